package liveness_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/liveness"
)

// silentClient never answers a probe until it is closed, as a vanished client.
type silentClient struct {
	sent   atomic.Int32
	closed chan struct{}
	once   sync.Once
}

func newSilent() *silentClient { return &silentClient{closed: make(chan struct{})} }

func (c *silentClient) SendRequest(string, bool, []byte) (bool, []byte, error) {
	c.sent.Add(1)
	<-c.closed
	return false, nil, errors.New("closed")
}

func (c *silentClient) close() { c.once.Do(func() { close(c.closed) }) }

// answeringClient answers every probe at once.
type answeringClient struct{ sent atomic.Int32 }

func (c *answeringClient) SendRequest(string, bool, []byte) (bool, []byte, error) {
	c.sent.Add(1)
	return false, nil, nil
}

func TestUnansweredProbesCloseAfterCountMax(t *testing.T) {
	c := newSilent()
	start := time.Now()
	r := liveness.Watch(context.Background(), liveness.Settings{KeepaliveInterval: 20 * time.Millisecond, KeepaliveCountMax: 3},
		c, liveness.NewActivity(), func(liveness.Reason) { c.close() })
	if r != liveness.KeepaliveUnanswered {
		t.Fatalf("reason %q", r)
	}
	// ClientAliveCountMax: count max probes go unanswered, the next interval closes.
	if n := c.sent.Load(); n != 3 {
		t.Fatalf("%d probes sent, want 3", n)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("closed after %v, before the fourth interval", d)
	}
}

func TestAnsweredProbesKeepTheConnection(t *testing.T) {
	c := &answeringClient{}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := liveness.Watch(ctx, liveness.Settings{KeepaliveInterval: 10 * time.Millisecond, KeepaliveCountMax: 1},
		c, liveness.NewActivity(), func(liveness.Reason) { t.Error("expired") })
	if r != "" || c.sent.Load() < 5 {
		t.Fatalf("reason %q after %d probes", r, c.sent.Load())
	}
}

func TestIdleTimeout(t *testing.T) {
	act := liveness.NewActivity()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopTouching := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	wg.Go(func() {
		for time.Now().Before(stopTouching) {
			act.Touch()
			time.Sleep(10 * time.Millisecond)
		}
	})
	start := time.Now()
	// Probes (answered) go on meanwhile and must not count as traffic.
	r := liveness.Watch(ctx, liveness.Settings{IdleTimeout: 100 * time.Millisecond, KeepaliveInterval: 10 * time.Millisecond},
		&answeringClient{}, act, func(liveness.Reason) {})
	wg.Wait()
	if r != liveness.IdleTimeout {
		t.Fatalf("reason %q", r)
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("closed after %v while traffic went on until 300ms", d)
	}
}

func TestMaxDuration(t *testing.T) {
	act := liveness.NewActivity()
	var got liveness.Reason
	r := liveness.Watch(context.Background(), liveness.Settings{MaxDuration: 50 * time.Millisecond}, &answeringClient{}, act,
		func(r liveness.Reason) { got = r })
	if r != liveness.MaxDuration || got != r {
		t.Fatalf("reason %q, expire got %q", r, got)
	}
}

func TestIsProbe(t *testing.T) {
	for name, want := range map[string]bool{"keepalive@openssh.com": true, "keepalive@cloudfoundry.org": true,
		"tcpip-forward": false, "hostkeys-00@openssh.com": false} {
		if liveness.IsProbe(name) != want {
			t.Errorf("IsProbe(%q) != %v", name, want)
		}
	}
}
