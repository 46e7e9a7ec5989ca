// Package logging builds the loggers every app-ssh process writes with: log/slog in the code,
// and on the wire lager's JSON lines, as every diego component writes them, so operators' log
// parsers and alerts keep working:
//
//	unix-epoch: {"timestamp":"1764590000.123456789","source":"ssh-proxy","message":"ssh-proxy.started","log_level":1,"data":{...}}
//	rfc3339:    {"timestamp":"2025-12-01T12:00:00.123456789Z","level":"info","source":"ssh-proxy","message":"ssh-proxy.started","data":{...}}
//
// (lager's writer sink and pretty sink, which lagerflags picks by time format). log_level is
// lager's: 0 debug, 1 info, 2 error, 3 fatal. slog's Warn is written as error, as lager's own
// slog bridge does; LevelFatal is the one level above error.
//
// The records are turned into lager.LogFormat here and written by lager's sinks (level filter,
// optional redaction, JSON encoding). lager's own slog handler is not used: it has no fatal
// level (so -logLevel=fatal could never show a fatal line), reports every level as enabled
// (so debug attributes would be built at info), and prefixes every message with the component
// even when the message already carries it.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"code.cloudfoundry.org/lager/v3"
)

// LevelFatal is the slog level written as lager's fatal (log_level 3): the process cannot go on.
const LevelFatal = slog.Level(12)

// Time formats (logging.format.timestamp, diego-sshd's -timeFormat).
const (
	TimeUnixEpoch = "unix-epoch"
	TimeRFC3339   = "rfc3339"
)

// ParseLevel maps the level names operators set (debug, info, warn, error, fatal) to lager's
// levels. "warn" means error and up: lager has no warning level.
func ParseLevel(name string) (lager.LogLevel, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "debug":
		return lager.DEBUG, nil
	case "", "info":
		return lager.INFO, nil
	case "warn", "warning", "error":
		return lager.ERROR, nil
	case "fatal":
		return lager.FATAL, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn, error or fatal)", name)
}

// ParseTimeFormat checks a time format name; "" means unix-epoch (lager's and diego's default).
func ParseTimeFormat(name string) (string, error) {
	switch name {
	case "", TimeUnixEpoch:
		return TimeUnixEpoch, nil
	case TimeRFC3339:
		return TimeRFC3339, nil
	}
	return "", fmt.Errorf("unknown time format %q (want unix-epoch or rfc3339)", name)
}

// Options configure a logger, already parsed: the config files and flags turn the names
// operators write into these once (ParseLevel, ParseTimeFormat). The zero value writes
// everything (debug) with unix-epoch timestamps.
type Options struct {
	// Level is the lowest level written.
	Level lager.LogLevel
	// TimeFormat is TimeUnixEpoch ("" too) or TimeRFC3339, as ParseTimeFormat returns it.
	TimeFormat string
	// RedactSecrets scrubs values that look like secrets (lager's default patterns: AWS keys,
	// private keys, JWTs, passwords in URLs...) and keys named like passwords from "data".
	RedactSecrets bool
	// RedactPatterns replace lager's default value patterns when RedactSecrets is on.
	RedactPatterns []string
}

// Logger is a slog logger writing lager lines, with a level that can change while it runs.
type Logger struct {
	*slog.Logger
	sink *lager.ReconfigurableSink
}

// SetLevel changes the lowest level written (the debug server's /log-level).
func (l *Logger) SetLevel(level lager.LogLevel) { l.sink.SetMinLevel(level) }

// Level is the lowest level written.
func (l *Logger) Level() lager.LogLevel { return l.sink.GetMinLevel() }

// NewLogger returns a logger writing lager JSON lines to w with source = component.
// Messages are written as "<component>.<message>" (a message that already starts with
// "<component>." is written as it is).
func NewLogger(w io.Writer, component string, o Options) (*Logger, error) {
	var sink lager.Sink
	var err error
	if o.TimeFormat == TimeRFC3339 {
		sink = lager.NewPrettySink(w, lager.DEBUG)
	} else {
		sink = lager.NewWriterSink(w, lager.DEBUG)
	}
	if o.RedactSecrets {
		var values []string
		if len(o.RedactPatterns) > 0 {
			values = o.RedactPatterns
		}
		if sink, err = lager.NewRedactingSink(sink, nil, values); err != nil {
			return nil, err
		}
	}
	rs := lager.NewReconfigurableSink(sink, o.Level)
	h := &handler{component: component, sink: rs}
	return &Logger{Logger: slog.New(h), sink: rs}, nil
}

// New returns a unix-epoch lager logger at the named level (see NewLogger), for the
// stand-ins and tests that take a level name.
func New(w io.Writer, level, component string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	l, err := NewLogger(w, component, Options{Level: lvl})
	if err != nil {
		return nil, err
	}
	return l.Logger, nil
}

// lagerLevel maps a slog level to lager's.
func lagerLevel(l slog.Level) lager.LogLevel {
	switch {
	case l < slog.LevelInfo:
		return lager.DEBUG
	case l < slog.LevelWarn:
		return lager.INFO
	case l < LevelFatal:
		return lager.ERROR
	}
	return lager.FATAL
}

// handler turns slog records into lager.LogFormat for the sink.
type handler struct {
	component string
	sink      *lager.ReconfigurableSink
	attrs     []slog.Attr // from WithAttrs, already placed under groups
	groups    []string
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return lagerLevel(l) >= h.sink.GetMinLevel()
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	data := lager.Data{}
	for _, a := range h.attrs {
		addAttr(data, a)
	}
	if r.NumAttrs() > 0 {
		target := data
		for _, g := range h.groups {
			sub, ok := target[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				target[g] = sub
			}
			target = sub
		}
		r.Attrs(func(a slog.Attr) bool {
			addAttr(target, a)
			return true
		})
	}
	msg := r.Message
	if !strings.HasPrefix(msg, h.component+".") {
		msg = h.component + "." + msg
	}
	h.sink.Log(lager.LogFormat{
		Timestamp: fmt.Sprintf("%.9f", float64(r.Time.UnixNano())/1e9),
		Source:    h.component,
		Message:   msg,
		LogLevel:  lagerLevel(r.Level),
		Data:      data,
	})
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		for i := len(h.groups) - 1; i >= 0; i-- {
			a = slog.Attr{Key: h.groups[i], Value: slog.GroupValue(a)}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}

// addAttr stores a in m the way lager data holds values: groups as nested objects, errors
// as their text, everything else as its resolved value.
func addAttr(m map[string]any, a slog.Attr) {
	v := a.Value.Resolve()
	switch {
	case v.Kind() == slog.KindGroup:
		target := m
		if a.Key != "" {
			sub, ok := m[a.Key].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[a.Key] = sub
			}
			target = sub
		}
		for _, ga := range v.Group() {
			addAttr(target, ga)
		}
	case a.Key == "":
	default:
		switch x := v.Any().(type) {
		case error:
			m[a.Key] = x.Error()
		case fmt.Stringer:
			m[a.Key] = x.String()
		default:
			m[a.Key] = x
		}
	}
}
