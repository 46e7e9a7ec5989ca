package debugserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/app-ssh/app-ssh/internal/debugserver"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

func start(t *testing.T) (string, *logging.Logger, *logbuf.Buffer) {
	t.Helper()
	var out logbuf.Buffer
	l, err := logging.NewLogger(&out, "ssh-proxy", logging.Options{Level: lager.INFO})
	if err != nil {
		t.Fatal(err)
	}
	s, err := debugserver.Start("127.0.0.1:0", l, l.Logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return "http://" + s.Addr().String(), l, &out
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLogLevelChangeTakesEffect(t *testing.T) {
	base, l, out := start(t)
	l.Debug("before")
	if st, body := do(t, http.MethodPost, base+"/log-level", "debug\n"); st != 200 {
		t.Fatalf("POST debug: %d %s", st, body)
	}
	l.Debug("after-debug")
	if st, _ := do(t, http.MethodPut, base+"/log-level", "error"); st != 200 {
		t.Fatalf("PUT error: %d", st)
	}
	l.Info("after-error")
	log := out.String()
	if strings.Contains(log, "ssh-proxy.before") || !strings.Contains(log, "ssh-proxy.after-debug") ||
		strings.Contains(log, "ssh-proxy.after-error") {
		t.Errorf("level changes did not take effect:\n%s", log)
	}
	if !strings.Contains(log, `"message":"ssh-proxy.log-level-changed"`) {
		t.Errorf("the change is not logged:\n%s", log)
	}
}

func TestLogLevelRefusesBadRequests(t *testing.T) {
	base, l, _ := start(t)
	if st, _ := do(t, http.MethodGet, base+"/log-level", ""); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", st)
	}
	for _, body := range []string{"", "loud", strings.Repeat("d", 100)} {
		if st, _ := do(t, http.MethodPost, base+"/log-level", body); st != http.StatusBadRequest {
			t.Errorf("POST %q: %d, want 400", body, st)
		}
	}
	if l.Level().String() != "info" {
		t.Errorf("a refused request changed the level to %v", l.Level())
	}
}

func TestPprofIsServed(t *testing.T) {
	base, _, _ := start(t)
	st, body := do(t, http.MethodGet, base+"/debug/pprof/", "")
	if st != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof index: %d %.200s", st, body)
	}
	st, body = do(t, http.MethodGet, base+"/debug/pprof/goroutine?debug=1", "")
	if st != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.200s", st, body)
	}
	if st, _ := do(t, http.MethodPost, base+"/block-profile-rate", "0"); st != 200 {
		t.Errorf("block-profile-rate: %d", st)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:17016": true, "[::1]:17016": true, "localhost:17016": true,
		"0.0.0.0:17016": false, ":17016": false, "10.0.0.5:17016": false, "[::]:17016": false, "bogus": false,
	} {
		if got := debugserver.Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
