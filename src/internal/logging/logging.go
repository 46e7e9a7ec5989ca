// Package logging builds the JSON slog loggers every app-ssh process writes with.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseLevel maps the level names operators set (debug, info, warn, error, fatal) to slog
// levels. "fatal" is accepted for compatibility with diego-sshd's -logLevel and means error.
func ParseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error", "fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn, error or fatal)", name)
}

// New returns a JSON logger writing to w at the named level, with the process name as the
// "source" attribute on every line.
func New(w io.Writer, level, process string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})
	return slog.New(h).With("source", process), nil
}
