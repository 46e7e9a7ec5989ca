// Package liveness decides when an established SSH connection is closed for being dead or idle,
// with the same meaning for the proxy and the sshd:
//
//   - keepalive interval and count max are OpenSSH's ClientAliveInterval/ClientAliveCountMax:
//     every interval a keepalive@openssh.com request (wanting a reply) is sent to the client;
//     once count max of them are unanswered, the connection is closed at the next interval.
//     Any reply (success or failure) answers all of them.
//   - the idle timeout closes a connection after that long without traffic. Traffic is every
//     SSH message the connection carries (channel opens, data, requests, global requests and
//     their replies) except the keepalive probes sent toward the client and the replies to
//     them: counting those would keep every live client open forever. A client's own
//     keepalives (OpenSSH's ServerAliveInterval, the cf CLI's keepalive@cloudfoundry.org) do
//     count, as they do for diego-ssh.
//   - the maximum duration closes a connection that long after it was established.
//
// The caller records traffic on an Activity (Reader and Writer wrap channel streams) and runs
// Watch for the connection's lifetime.
package liveness

import (
	"context"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Activity records when traffic last moved on a connection. It is safe for concurrent use.
type Activity struct{ last atomic.Int64 }

// NewActivity returns an Activity that has just seen traffic.
func NewActivity() *Activity {
	a := &Activity{}
	a.Touch()
	return a
}

// Touch records traffic now.
func (a *Activity) Touch() { a.last.Store(time.Now().UnixNano()) }

// IdleFor is the time since the last traffic.
func (a *Activity) IdleFor() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// Reader touches a on every read that returns data.
func Reader(r io.Reader, a *Activity) io.Reader { return activeReader{r: r, a: a} }

// Writer touches a on every write that moves data.
func Writer(w io.Writer, a *Activity) io.Writer { return activeWriter{w: w, a: a} }

type activeReader struct {
	r io.Reader
	a *Activity
}

func (r activeReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.a.Touch()
	}
	return n, err
}

type activeWriter struct {
	w io.Writer
	a *Activity
}

func (w activeWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if n > 0 {
		w.a.Touch()
	}
	return n, err
}

// IsProbe reports whether a global request type is a keepalive probe (keepalive@openssh.com
// and its kin). Sent toward the client, a probe is not traffic.
func IsProbe(requestType string) bool { return strings.HasPrefix(requestType, "keepalive@") }

// ProbeRequest is the request type Watch sends.
const ProbeRequest = "keepalive@openssh.com"

// Settings are one connection's limits; a zero value turns that limit off.
type Settings struct {
	IdleTimeout       time.Duration
	KeepaliveInterval time.Duration
	// KeepaliveCountMax is the number of unanswered probes tolerated (values below 1 mean 1).
	KeepaliveCountMax int
	MaxDuration       time.Duration
}

// Reason says why Watch closed a connection.
type Reason string

// The reasons Watch returns ("" when ctx ended first).
const (
	IdleTimeout         Reason = "idle timeout"
	KeepaliveUnanswered Reason = "keepalive unanswered"
	MaxDuration         Reason = "max connection duration"
)

// Prober sends a global request to the client and waits for its reply (ssh.Conn does).
type Prober interface {
	SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error)
}

// Watch enforces s on one connection until ctx ends or a limit is reached. On a limit it calls
// expire with the reason; expire must close the connection (that ends probes still waiting for
// a reply). Watch returns once every probe it sent has ended, with the reason or "".
func Watch(ctx context.Context, s Settings, conn Prober, act *Activity, expire func(Reason)) Reason {
	var maxDuration <-chan time.Time
	if s.MaxDuration > 0 {
		t := time.NewTimer(s.MaxDuration)
		defer t.Stop()
		maxDuration = t.C
	}
	var keepalive <-chan time.Time
	if s.KeepaliveInterval > 0 {
		t := time.NewTicker(s.KeepaliveInterval)
		defer t.Stop()
		keepalive = t.C
	}
	var idle <-chan time.Time
	var idleTimer *time.Timer
	if s.IdleTimeout > 0 {
		idleTimer = time.NewTimer(s.IdleTimeout)
		defer idleTimer.Stop()
		idle = idleTimer.C
	}
	countMax := int32(max(s.KeepaliveCountMax, 1))
	var unanswered atomic.Int32
	var probes sync.WaitGroup
	defer probes.Wait() // each probe ends with a reply or when the connection closes
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-maxDuration:
			expire(MaxDuration)
			return MaxDuration
		case <-idle:
			if left := s.IdleTimeout - act.IdleFor(); left > 0 {
				idleTimer.Reset(left)
				continue
			}
			expire(IdleTimeout)
			return IdleTimeout
		case <-keepalive:
			if unanswered.Load() >= countMax {
				expire(KeepaliveUnanswered)
				return KeepaliveUnanswered
			}
			unanswered.Add(1)
			probes.Go(func() {
				if _, _, err := conn.SendRequest(ProbeRequest, true, nil); err == nil {
					unanswered.Store(0)
				}
			})
		}
	}
}
