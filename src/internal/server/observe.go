package server

import (
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/audit"
	"github.com/app-ssh/app-ssh/internal/liveness"
	"github.com/app-ssh/app-ssh/internal/metrics"
)

// tracked is one authenticated, relayed connection: it sees every channel (through wrappers
// around the client's side, so the relay needs no hooks), counts bytes for metrics and audit,
// records activity for the session idle timeout and keeps the open session channels so a
// drain can tell the user why the connection is closing.
//
// Activity is traffic on the client connection, as diego-ssh counts it (it pushes a deadline on
// every read and write of the socket): new channels, channel data and requests in both
// directions, the client's global requests (the server touches on those) and global requests
// relayed to the client. The one exception is a keepalive probe sent toward the client (by the
// proxy itself, which does not go through this wrapper, or relayed from the instance's sshd):
// counting those would keep every live but idle client open forever.
type tracked struct {
	conn    ssh.Conn
	metrics *metrics.Metrics
	audit   *audit.Session
	policy  *connPolicy // nil: no policy (tests of the bare server)

	activity  *liveness.Activity
	toBackend atomic.Int64
	toClient  atomic.Int64

	mu       sync.Mutex
	sessions map[ssh.Channel]struct{}

	wg sync.WaitGroup // request taps and the channel forwarder
}

func newTracked(conn ssh.Conn, m *metrics.Metrics, a *audit.Session) *tracked {
	return &tracked{conn: conn, metrics: m, audit: a, activity: liveness.NewActivity(), sessions: map[ssh.Channel]struct{}{}}
}

func (t *tracked) touch() { t.activity.Touch() }

// channels wraps the client's new-channel stream; the returned stream closes when in does.
func (t *tracked) channels(in <-chan ssh.NewChannel) <-chan ssh.NewChannel {
	out := make(chan ssh.NewChannel)
	t.wg.Go(func() {
		defer close(out)
		for nc := range in {
			t.touch()
			st, d := t.admit(nc.ChannelType(), nc.ExtraData(), audit.FromClient)
			if d != nil {
				_ = nc.Reject(d.RejectionReason(), d.Reason)
				continue
			}
			out <- &observedNewChannel{NewChannel: nc, t: t, st: st}
		}
	})
	return out
}

// clientConn is the client connection as the relay sees it: channels the backend opens toward
// the client (-R forwards) are observed too.
func (t *tracked) clientConn() ssh.Conn { return &observedConn{Conn: t.conn, t: t} }

func (t *tracked) opened(typ string, ch ssh.Channel, reqs <-chan *ssh.Request, st *chanState) (ssh.Channel, <-chan *ssh.Request) {
	t.touch()
	t.metrics.Channel(typ)
	t.audit.Channel(typ)
	if typ == "session" {
		t.mu.Lock()
		t.sessions[ch] = struct{}{}
		t.mu.Unlock()
	}
	out := make(chan *ssh.Request)
	t.wg.Go(func() {
		defer close(out)
		for r := range reqs {
			t.touch()
			switch r.Type {
			case "exec":
				t.audit.Command(stringPayload(r.Payload))
			case "subsystem":
				t.audit.Command("subsystem:" + stringPayload(r.Payload))
			}
			out <- r
		}
		t.mu.Lock()
		delete(t.sessions, ch)
		t.mu.Unlock()
		t.closed(st)
	})
	oc := &observedChannel{Channel: ch, t: t, st: st}
	t.started(st, oc.Channel)
	return oc, out
}

// notify writes msg to the stderr of every open session channel (best effort).
func (t *tracked) notify(msg string) {
	t.mu.Lock()
	chs := make([]ssh.Channel, 0, len(t.sessions))
	for ch := range t.sessions {
		chs = append(chs, ch)
	}
	t.mu.Unlock()
	for _, ch := range chs {
		_, _ = ch.Stderr().Write([]byte(msg))
	}
}

func (t *tracked) addBytes(toBackend, toClient int) {
	if toBackend > 0 {
		t.toBackend.Add(int64(toBackend))
	}
	if toClient > 0 {
		t.toClient.Add(int64(toClient))
	}
	t.metrics.Bytes(int64(max(toBackend, 0)), int64(max(toClient, 0)))
	t.touch()
}

// stringPayload decodes an SSH string (exec command, subsystem name); "" if malformed.
func stringPayload(p []byte) string {
	if len(p) < 4 {
		return ""
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return ""
	}
	return string(p[4 : 4+n])
}

type observedNewChannel struct {
	ssh.NewChannel
	t  *tracked
	st *chanState
}

func (n *observedNewChannel) Accept() (ssh.Channel, <-chan *ssh.Request, error) {
	ch, reqs, err := n.NewChannel.Accept()
	if err != nil {
		n.t.notOpened(n.st, "accept failed")
		return ch, reqs, err
	}
	c, r := n.t.opened(n.ChannelType(), ch, reqs, n.st)
	return c, r, nil
}

// Reject is the instance's refusal relayed to the client.
func (n *observedNewChannel) Reject(reason ssh.RejectionReason, message string) error {
	n.t.notOpened(n.st, "open failed: "+message)
	return n.NewChannel.Reject(reason, message)
}

type observedConn struct {
	ssh.Conn
	t *tracked
}

// SendRequest relays a global request to the client (see tracked for what counts as activity).
func (c *observedConn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	if !liveness.IsProbe(name) {
		c.t.touch()
	}
	return c.Conn.SendRequest(name, wantReply, payload)
}

// OpenChannel opens, toward the client, a channel the instance asked for (-R forwards): the
// policy's refusal goes back to the instance as the open failure.
func (c *observedConn) OpenChannel(name string, data []byte) (ssh.Channel, <-chan *ssh.Request, error) {
	st, d := c.t.admit(name, data, audit.FromBackend)
	if d != nil {
		return nil, nil, &ssh.OpenChannelError{Reason: d.RejectionReason(), Message: d.Reason}
	}
	ch, reqs, err := c.Conn.OpenChannel(name, data)
	if err != nil {
		c.t.notOpened(st, "open failed: "+err.Error())
		return ch, reqs, err
	}
	oc, r := c.t.opened(name, ch, reqs, st)
	return oc, r, nil
}

// observedChannel is the client's end of a relayed channel: reads are bytes toward the
// backend, writes bytes toward the client.
type observedChannel struct {
	ssh.Channel
	t  *tracked
	st *chanState // nil without a policy
}

func (c *observedChannel) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	if n > 0 {
		c.t.addBytes(n, 0)
		c.st.input(p[:n])
	}
	return n, err
}

func (c *observedChannel) Write(p []byte) (int, error) {
	n, err := c.Channel.Write(p)
	if n > 0 {
		c.t.addBytes(0, n)
		c.st.output(p[:n])
	}
	return n, err
}

// SendRequest sends a channel request to the client (exit-status, forwarded signals, ...).
func (c *observedChannel) SendRequest(name string, wantReply bool, payload []byte) (bool, error) {
	c.t.touch()
	if c.st != nil {
		switch name {
		case "exit-status":
			var m struct{ Status uint32 }
			if ssh.Unmarshal(payload, &m) == nil {
				c.st.audit.Exit(m.Status)
			}
		case "exit-signal":
			var m struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(payload, &m) == nil {
				c.st.audit.ExitSignal(m.Signal)
			}
		}
	}
	return c.Channel.SendRequest(name, wantReply, payload)
}

func (c *observedChannel) Stderr() io.ReadWriter {
	return &observedStderr{rw: c.Channel.Stderr(), t: c.t, st: c.st}
}

type observedStderr struct {
	rw io.ReadWriter
	t  *tracked
	st *chanState
}

func (s *observedStderr) Read(p []byte) (int, error) {
	n, err := s.rw.Read(p)
	if n > 0 {
		s.t.addBytes(n, 0)
		s.st.input(p[:n])
	}
	return n, err
}

func (s *observedStderr) Write(p []byte) (int, error) {
	n, err := s.rw.Write(p)
	if n > 0 {
		s.t.addBytes(0, n)
		s.st.output(p[:n])
	}
	return n, err
}

// input and output count a channel's bytes and feed its recording, if any.
func (st *chanState) input(p []byte) {
	if st == nil {
		return
	}
	st.toBackend.Add(int64(len(p)))
	if r := st.rec.Load(); r != nil {
		r.Input(p)
	}
}

func (st *chanState) output(p []byte) {
	if st == nil {
		return
	}
	st.toClient.Add(int64(len(p)))
	if r := st.rec.Load(); r != nil {
		r.Output(p)
	}
}
