package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/app-ssh/app-ssh/internal/logging"
)

func TestParseLevel(t *testing.T) {
	cases := map[string]slog.Level{"debug": slog.LevelDebug, "": slog.LevelInfo, "INFO": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError, "fatal": slog.LevelError}
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

func TestNewWritesJSONAtLevel(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.New(&buf, "info", "ssh-proxy")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["msg"] != "shown" || line["source"] != "ssh-proxy" || line["k"] != "v" {
		t.Errorf("unexpected line %v", line)
	}
}
