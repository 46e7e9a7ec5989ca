package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/app-ssh/app-ssh/internal/logging"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	// sorted for a stable comparison
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return strings.Join(ks, ",")
}

func TestParseLevel(t *testing.T) {
	cases := map[string]lager.LogLevel{"debug": lager.DEBUG, "": lager.INFO, "INFO": lager.INFO,
		"warn": lager.ERROR, "error": lager.ERROR, "fatal": lager.FATAL}
	for in, want := range cases {
		got, err := logging.ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) accepted an unknown level")
	}
}

// unix-epoch: lager's writer sink, exactly the five keys diego components write.
func TestUnixEpochLinesHaveLagersShape(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.NewLogger(&buf, "ssh-proxy", logging.Options{Level: lager.INFO})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	l.Debug("hidden")
	l.Info("started", "address", "0.0.0.0:2222", "timeout", 2*time.Second)
	l.Warn("warned")
	l.Error("ssh-proxy.failed", "error", errors.New("boom"))
	l.Log(context.Background(), logging.LevelFatal, "cannot-start")
	got := lines(t, &buf)
	if len(got) != 4 {
		t.Fatalf("want 4 lines (debug hidden), got %d: %s", len(got), buf.String())
	}
	for _, m := range got {
		if keys(m) != "data,log_level,message,source,timestamp" {
			t.Errorf("keys %s, want lager's data,log_level,message,source,timestamp: %v", keys(m), m)
		}
		if m["source"] != "ssh-proxy" {
			t.Errorf("source %v", m["source"])
		}
		ts, ok := m["timestamp"].(string)
		if !ok || !regexp.MustCompile(`^\d{10}\.\d{9}$`).MatchString(ts) {
			t.Errorf("timestamp %v is not lager's unix-epoch string", m["timestamp"])
		}
	}
	var secs float64
	if err := json.Unmarshal([]byte(got[0]["timestamp"].(string)), &secs); err != nil ||
		secs < float64(before.Add(-time.Second).Unix()) || secs > float64(time.Now().Add(time.Second).Unix()) {
		t.Errorf("timestamp %v is not now in seconds since the epoch", got[0]["timestamp"])
	}
	want := []struct {
		msg   string
		level float64
	}{{"ssh-proxy.started", 1}, {"ssh-proxy.warned", 2}, {"ssh-proxy.failed", 2}, {"ssh-proxy.cannot-start", 3}}
	for i, w := range want {
		if got[i]["message"] != w.msg || got[i]["log_level"] != w.level {
			t.Errorf("line %d: message %v log_level %v, want %s %v", i, got[i]["message"], got[i]["log_level"], w.msg, w.level)
		}
	}
	data := got[0]["data"].(map[string]any)
	if data["address"] != "0.0.0.0:2222" || data["timeout"] != "2s" {
		t.Errorf("data %v", data)
	}
	if got[2]["data"].(map[string]any)["error"] != "boom" {
		t.Errorf("error not written as its text: %v", got[2]["data"])
	}
}

// rfc3339: lager's pretty sink, which writes "level" as a word instead of log_level.
func TestRFC3339LinesAreLagersPrettyFormat(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.NewLogger(&buf, "sshd", logging.Options{Level: lager.INFO, TimeFormat: logging.TimeRFC3339})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("started", "port", 2222)
	l.Error("failed")
	got := lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("want 2 lines: %s", buf.String())
	}
	if keys(got[0]) != "data,level,message,source,timestamp" {
		t.Errorf("keys %s", keys(got[0]))
	}
	ts := got[0]["timestamp"].(string)
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`).MatchString(ts) {
		t.Errorf("timestamp %q is not lager's RFC 3339 (UTC, nanoseconds)", ts)
	}
	if got[0]["level"] != "info" || got[1]["level"] != "error" || got[0]["message"] != "sshd.started" {
		t.Errorf("lines %v", got)
	}
	if _, err := logging.ParseTimeFormat("iso"); err == nil {
		t.Error("accepted an unknown time format")
	}
	for in, want := range map[string]string{"": logging.TimeUnixEpoch, "unix-epoch": logging.TimeUnixEpoch, "rfc3339": logging.TimeRFC3339} {
		if got, err := logging.ParseTimeFormat(in); err != nil || got != want {
			t.Errorf("ParseTimeFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestFatalLevelWritesOnlyFatalLines(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.NewLogger(&buf, "sshd", logging.Options{Level: lager.FATAL})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("info")
	l.Warn("warn")
	l.Error("error")
	if l.Enabled(context.Background(), slog.LevelError) {
		t.Error("error reported enabled at fatal")
	}
	l.Log(context.Background(), logging.LevelFatal, "listen-failed")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["message"] != "sshd.listen-failed" || got[0]["log_level"] != 3.0 {
		t.Errorf("want only the fatal line, got %s", buf.String())
	}
}

func TestSetLevelTakesEffect(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.NewLogger(&buf, "ssh-proxy", logging.Options{Level: lager.INFO})
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("before")
	l.SetLevel(lager.DEBUG)
	if l.Level() != lager.DEBUG {
		t.Errorf("Level() = %v", l.Level())
	}
	l.Debug("after")
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["message"] != "ssh-proxy.after" || got[0]["log_level"] != 0.0 {
		t.Errorf("got %s", buf.String())
	}
}

func TestGroupsAttrsAndRedaction(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.NewLogger(&buf, "sshd", logging.Options{Level: lager.INFO, RedactSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	l.With("session", "s1").WithGroup("req").Info("env", "name", "X", "value", "AKIAABCDEFGHIJKLMNOP")
	m := lines(t, &buf)[0]["data"].(map[string]any)
	req, _ := m["req"].(map[string]any)
	if m["session"] != "s1" || req["name"] != "X" {
		t.Errorf("data %v", m)
	}
	if strings.Contains(buf.String(), "AKIAABCDEFGHIJKLMNOP") {
		t.Errorf("-redactSecrets left an AWS key in the log: %s", buf.String())
	}
	buf.Reset()
	plain, _ := logging.NewLogger(&buf, "sshd", logging.Options{Level: lager.INFO})
	plain.Info("env", "value", "AKIAABCDEFGHIJKLMNOP")
	if !strings.Contains(buf.String(), "AKIAABCDEFGHIJKLMNOP") {
		t.Errorf("without redaction the value should be written as is: %s", buf.String())
	}
}
