// Package limits holds the ssh-proxy's pre-authentication defences: a bound on unauthenticated
// connections that sheds the ones that made the least progress (Preauth), and per-source
// penalties for sources whose clients present bad credentials (Penalties).
package limits

import "sync"

// Stage is how far an unauthenticated connection has got. Later stages cost a client more
// work (and a flood more), so they are shed last.
type Stage int

const (
	// Connected: a TCP connection (and its PROXY header, if any), nothing of SSH yet.
	Connected Stage = iota
	// Identified: the client sent its SSH identification line.
	Identified
	// KexInit: the client sent its first binary packet (KEXINIT).
	KexInit
	// AuthAttempted: the client finished the key exchange and attempted authentication.
	AuthAttempted

	numStages
)

// Preauth bounds the unauthenticated connections. Every new connection is admitted; when that
// puts the count over the limit, the connection that made the least progress is shed, the one
// that has waited longest at that stage first. A flood of sockets that never speak SSH thus
// only ever displaces itself, while a real login, which reaches the later stages within a few
// round trips, keeps its place. It is safe for concurrent use; a nil *Preauth admits everything
// and tracks nothing.
type Preauth struct {
	limit int

	mu     sync.Mutex
	stages [numStages]entryList
	n      int
}

// Conn is one connection tracked by a Preauth. Its methods are no-ops on a nil *Conn.
type Conn struct {
	p          *Preauth
	stage      Stage
	prev, next *Conn
	listed     bool
	shed       func()
}

// entryList is an intrusive FIFO of entries (oldest at head).
type entryList struct{ head, tail *Conn }

func (l *entryList) push(e *Conn) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *entryList) remove(e *Conn) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// NewPreauth bounds unauthenticated connections at limit (at least 1).
func NewPreauth(limit int) *Preauth {
	return &Preauth{limit: max(limit, 1)}
}

// Add tracks a new connection at stage Connected. If the count is then over the limit, the
// least-progressed other connection stops being tracked and its shed func is called (in the
// caller's goroutine, after the lock is released; it should close that connection).
func (p *Preauth) Add(shed func()) *Conn {
	if p == nil {
		return nil
	}
	e := &Conn{p: p, shed: shed}
	p.mu.Lock()
	var victim *Conn
	if p.n >= p.limit {
		for s := range p.stages {
			if v := p.stages[s].head; v != nil {
				victim = v
				p.unlistLocked(v)
				break
			}
		}
	}
	p.stages[Connected].push(e)
	e.listed = true
	p.n++
	p.mu.Unlock()
	if victim != nil && victim.shed != nil {
		victim.shed()
	}
	return e
}

func (p *Preauth) unlistLocked(e *Conn) {
	p.stages[e.stage].remove(e)
	e.listed = false
	p.n--
}

// Advance records that the connection reached stage s (never moves it back). It joins the end
// of that stage's queue.
func (e *Conn) Advance(s Stage) {
	if e == nil {
		return
	}
	p := e.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !e.listed || s <= e.stage || s >= numStages {
		return
	}
	p.stages[e.stage].remove(e)
	e.stage = s
	p.stages[s].push(e)
}

// Done stops tracking the connection (it authenticated or ended). Calling it again, or for a
// connection that was shed, does nothing.
func (e *Conn) Done() {
	if e == nil {
		return
	}
	p := e.p
	p.mu.Lock()
	if e.listed {
		p.unlistLocked(e)
	}
	p.mu.Unlock()
}

// Len is the number of unauthenticated connections tracked now.
func (p *Preauth) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
