package server

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/audit"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/policy"
	"github.com/app-ssh/app-ssh/internal/recording"
)

// connPolicy is the operator's policy as one connection applies it (docs/policy.md): the shared
// rules, the connection's channel counts, the recording manager (nil = off) and the session ID
// that links channel events and cast names to the connection.
type connPolicy struct {
	rules     *policy.Rules
	conn      *policy.Conn
	rec       *recording.Manager
	sessionID string
	next      atomic.Int64 // channel numbers, in the order of opens (both directions)
}

// chanState is one channel (open or being opened) under the policy: its audit event, its slot
// in the connection's channel counts, and for sessions the policy session, the recorder and
// the maximum session duration's timer.
type chanState struct {
	n       int
	typ     string
	audit   *audit.Channel
	release func()
	sess    *policy.Session // session channels only

	rec       atomic.Pointer[recording.Recorder]
	toBackend atomic.Int64
	toClient  atomic.Int64
	endReason atomic.Value // string

	mu         sync.Mutex
	timer      *time.Timer
	ended      bool
	term       string
	cols, rows uint32
}

// denied counts and logs a denial (the caller audits it where it belongs).
func (t *tracked) denied(d *policy.Denial) {
	t.metrics.PolicyDenied(string(d.Kind))
}

// admit decides a channel open (from the client or, for -R, from the backend). A nil state
// with a nil denial means no policy is configured.
func (t *tracked) admit(chanType string, extra []byte, dir string) (*chanState, *policy.Denial) {
	p := t.policy
	if p == nil {
		return nil, nil
	}
	n := int(p.next.Add(1))
	var c policy.Channel
	var d *policy.Denial
	if dir == audit.FromClient {
		c, d = p.rules.Channel(chanType, extra)
	} else {
		c, d = p.rules.BackendChannel(chanType, extra)
	}
	var release func()
	if d == nil {
		release, d = p.conn.Acquire(chanType)
	}
	if d != nil {
		t.denied(d)
		t.audit.ChannelRefused(p.sessionID, n, chanType, dir, c.Target, audit.Denial{Kind: string(d.Kind), Reason: d.Reason})
		return nil, d
	}
	st := &chanState{n: n, typ: chanType, release: release, audit: t.audit.OpenChannel(p.sessionID, n, chanType, dir)}
	st.endReason.Store("closed")
	if c.Target != "" {
		st.audit.ForwardTarget(c.Target)
	}
	if chanType == policy.ChanSession {
		st.sess = p.rules.NewSession()
	}
	return st, nil
}

// notOpened ends a channel the other side refused or that could not be accepted.
func (t *tracked) notOpened(st *chanState, why string) {
	if st == nil {
		return
	}
	st.endReason.Store(why)
	t.closed(st)
}

// started runs once the channel is open on both sides: the maximum session duration begins.
func (t *tracked) started(st *chanState, ch ssh.Channel) {
	if st == nil || st.sess == nil || t.policy.rules.MaxSessionDuration() <= 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	st.timer = time.AfterFunc(t.policy.rules.MaxSessionDuration(), func() {
		d := t.policy.rules.SessionDurationDenial()
		t.denied(d)
		st.audit.Denied(string(d.Kind), d.Reason)
		st.endReason.Store(string(d.Kind))
		t.endChannel(ch, d)
	})
}

// endChannel tells the user why their session ends (bounded to a second: a client that does
// not read cannot hold it up) and closes the channel; the relay then closes the backend's.
func (t *tracked) endChannel(ch ssh.Channel, d *policy.Denial) {
	done := make(chan struct{})
	var w sync.WaitGroup
	w.Go(func() {
		defer close(done)
		_, _ = ch.Stderr().Write([]byte("\r\n" + d.StderrLine()))
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{policy.DeniedExitStatus}))
		_ = ch.CloseWrite()
	})
	select {
	case <-done:
	case <-time.After(time.Second):
	}
	_ = ch.Close()
	w.Wait()
}

// closed ends a channel's audit event, recording and counts (once).
func (t *tracked) closed(st *chanState) {
	if st == nil {
		return
	}
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return
	}
	st.ended = true
	if st.timer != nil {
		st.timer.Stop()
	}
	st.mu.Unlock()
	st.release()
	if r := st.rec.Load(); r != nil {
		res := r.Close()
		st.audit.Recording(res.File, res.Capped, res.Err)
		switch {
		case res.Err != nil:
			t.metrics.Recording(metrics.RecordingFailed, res.Bytes)
		case res.Capped:
			t.metrics.Recording(metrics.RecordingCapped, res.Bytes)
		default:
			t.metrics.Recording(metrics.RecordingRecorded, res.Bytes)
		}
	}
	st.audit.Bytes(st.toBackend.Load(), st.toClient.Load())
	st.audit.End(st.endReason.Load().(string))
}

// channelRequest applies the policy to a request the client sent on a session channel (the
// relay's HandleChannelRequest: it runs in the channel's request order). It returns true when
// it answered the request itself.
func (t *tracked) channelRequest(src, _ ssh.Channel, req *ssh.Request) bool {
	oc, ok := src.(*observedChannel)
	if !ok || oc.st == nil || oc.st.sess == nil {
		return false
	}
	st := oc.st
	q, d := st.sess.Request(req.Type, req.Payload)
	if d != nil {
		t.denied(d)
		st.audit.Denied(string(d.Kind), d.Reason)
		switch d.Answer() {
		case policy.AnswerDefer: // a refused pty: the program request that follows gets the reason
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		case policy.AnswerExit:
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
			st.audit.Exit(policy.DeniedExitStatus)
			st.endReason.Store("denied by policy")
			t.endChannel(oc.Channel, d)
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			_, _ = oc.Channel.Stderr().Write([]byte(d.StderrLine()))
		}
		return true
	}
	switch req.Type {
	case "pty-req":
		st.audit.Pty()
		st.mu.Lock()
		st.term, st.cols, st.rows = q.Term, q.Cols, q.Rows
		st.mu.Unlock()
	case "env":
		st.audit.EnvName(q.EnvName)
	case "window-change":
		if r := st.rec.Load(); r != nil {
			r.Resize(int(q.Cols), int(q.Rows))
		}
	}
	if q.Program != "" {
		st.audit.Program(string(q.Program), q.Command, q.Subsystem)
		if t.policy.rec != nil && st.sess.Recorded() && st.rec.Load() == nil {
			st.mu.Lock()
			h := recording.Header{Width: int(st.cols), Height: int(st.rows), Term: st.term}
			st.mu.Unlock()
			r, err := t.policy.rec.Start(h, t.policy.sessionID, st.n)
			if err != nil {
				st.audit.Recording("", false, err)
				t.metrics.Recording(metrics.RecordingFailed, 0)
			} else {
				st.rec.Store(r)
			}
		}
	}
	return false
}

// globalRequest applies the policy to the client's remote forwarding requests: a refused one
// is answered here and audited; a permitted tcpip-forward is relayed here so the grant the
// instance gives is audited too. Other requests are left to the relay (false).
func (t *tracked) globalRequest(backend ssh.Conn, req *ssh.Request) bool {
	if t.policy == nil {
		return false
	}
	listen, d := t.policy.rules.GlobalRequest(req.Type, req.Payload)
	if d != nil {
		t.denied(d)
		t.audit.RequestRefused(t.policy.sessionID, req.Type, listen, audit.Denial{Kind: string(d.Kind), Reason: d.Reason})
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
		return true
	}
	if req.Type != policy.ReqTCPIPForward {
		return false
	}
	ok, payload, err := backend.SendRequest(req.Type, req.WantReply, req.Payload)
	if err != nil {
		ok, payload = false, nil
	}
	if ok && listen != "" {
		t.audit.RemoteForward(t.policy.sessionID, listen)
	}
	_ = req.Reply(ok, payload)
	return true
}
