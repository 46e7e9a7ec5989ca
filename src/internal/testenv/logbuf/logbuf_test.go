package logbuf_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

func TestLagerLinesFlattensDataAndReportsOtherLines(t *testing.T) {
	text := `{"timestamp":"1.5","source":"ssh-proxy","message":"ssh-proxy.started","log_level":1,"data":{"address":"127.0.0.1:2222"}}

not json
{"message":"no level"}
{"timestamp":"2.5","source":"sshd","message":"sshd.exited","log_level":0,"data":{}}`
	lines, bad := logbuf.LagerLines(text)
	if len(lines) != 2 || len(bad) != 2 {
		t.Fatalf("got %d lines and %d bad ones: %v / %q", len(lines), len(bad), lines, bad)
	}
	first := lines[0]
	want := map[string]any{"message": "ssh-proxy.started", "source": "ssh-proxy", "timestamp": "1.5", "log_level": 1, "address": "127.0.0.1:2222"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	if lines[1]["log_level"] != 0 {
		t.Errorf("a debug line's level is 0, got %v", lines[1]["log_level"])
	}
}

func TestBufferTakesConcurrentWriters(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "%d-%d\n", i, j)
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n < 8*100*4 {
		t.Fatalf("lost writes: %d bytes", n)
	}
}
