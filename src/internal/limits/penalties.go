package limits

import (
	"net/netip"
	"sync"
	"time"
)

// Event is something a source is penalised for.
type Event int

const (
	// AuthFail: the connection attempted authentication and never succeeded.
	AuthFail Event = iota
	// NoAuth: the connection ended without attempting authentication.
	NoAuth
	// GraceExceeded: the connection was still unauthenticated at the login grace time.
	GraceExceeded
)

// PenaltyConfig is OpenSSH's PerSourcePenalties model. A source's penalty accumulates (each
// event adds its duration, capped at Max) and the source is refused once the accumulated
// penalty reaches Min, until it has run out.
type PenaltyConfig struct {
	AuthFail, NoAuth, GraceExceeded time.Duration
	// Min is the accumulated penalty at which refusing starts; Max caps it.
	Min, Max time.Duration
	// MaxSources bounds the table; when it is full of live penalties, new sources are not
	// tracked (DenyAllOnOverflow false) or every untracked source is refused (true).
	MaxSources        int
	DenyAllOnOverflow bool
	// Exempt sources are never penalised.
	Exempt []netip.Prefix
}

type penalty struct {
	expiry time.Time
	active bool
}

// Penalties is a bounded table of penalised source addresses. It is safe for concurrent use.
type Penalties struct {
	cfg PenaltyConfig
	now func() time.Time

	mu        sync.Mutex
	table     map[netip.Addr]*penalty
	lastSweep time.Time
	overflow  bool
}

// NewPenalties returns an empty table.
func NewPenalties(cfg PenaltyConfig) *Penalties {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 65536
	}
	return &Penalties{cfg: cfg, now: time.Now, table: map[netip.Addr]*penalty{}}
}

// Exempt reports whether addr is on the exempt list.
func (p *Penalties) Exempt(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pf := range p.cfg.Exempt {
		if pf.Contains(addr) {
			return true
		}
	}
	return false
}

// Refused reports whether a new connection from addr must be refused now.
func (p *Penalties) Refused(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || p.Exempt(addr) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pe, ok := p.table[addr]
	if !ok {
		if !p.overflow || !p.cfg.DenyAllOnOverflow {
			return false
		}
		p.sweep(now)
		p.overflow = len(p.table) >= p.cfg.MaxSources
		return p.overflow
	}
	if !now.Before(pe.expiry) {
		delete(p.table, addr)
		return false
	}
	return pe.active
}

// Penalise records ev against addr (nothing for exempt or invalid addresses, or events with a
// zero duration).
func (p *Penalties) Penalise(addr netip.Addr, ev Event) {
	addr = addr.Unmap()
	var d time.Duration
	switch ev {
	case AuthFail:
		d = p.cfg.AuthFail
	case NoAuth:
		d = p.cfg.NoAuth
	case GraceExceeded:
		d = p.cfg.GraceExceeded
	}
	if d <= 0 || !addr.IsValid() || p.Exempt(addr) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pe, ok := p.table[addr]
	if ok && !now.Before(pe.expiry) {
		delete(p.table, addr)
		ok = false
	}
	if !ok {
		if len(p.table) >= p.cfg.MaxSources {
			p.sweep(now)
		}
		if len(p.table) >= p.cfg.MaxSources {
			p.overflow = true
			return
		}
		p.overflow = false
		pe = &penalty{expiry: now}
		p.table[addr] = pe
	}
	pe.expiry = pe.expiry.Add(d)
	if p.cfg.Max > 0 && pe.expiry.Sub(now) > p.cfg.Max {
		pe.expiry = now.Add(p.cfg.Max)
	}
	if pe.expiry.Sub(now) >= p.cfg.Min {
		pe.active = true
	}
}

// sweep drops expired entries; at most once a second so a full table under attack does not
// cost a scan per connection.
func (p *Penalties) sweep(now time.Time) {
	if now.Sub(p.lastSweep) < time.Second {
		return
	}
	p.lastSweep = now
	for a, pe := range p.table {
		if !now.Before(pe.expiry) {
			delete(p.table, a)
		}
	}
}

// Len is the number of tracked sources (expired ones may still be counted until swept).
func (p *Penalties) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.table)
}
