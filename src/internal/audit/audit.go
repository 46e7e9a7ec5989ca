// Package audit writes the ssh-proxy's audit trail: one JSON line when a session starts and
// one when it ends, to a file of its own. Events name who (the user from the token, never the
// token), what (app, index, process, channel types, exec commands) and how much (duration,
// bytes each way). Passwords, one-time codes, tokens and keys never reach this package.
package audit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// Limits on what one session record keeps, so a client cannot grow it without bound.
const (
	MaxCommands     = 64
	MaxCommandBytes = 4096
	MaxChannelTypes = 16
)

// Log is an append-only JSON-lines file. A nil *Log writes nothing.
type Log struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// Open appends to path (created 0600 when missing, with its directory 0750 if that is missing
// too: on a BOSH VM /var/vcap/sys/log/<job> exists; elsewhere it may not).
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("audit_log_file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit_log_file: %w", err)
	}
	return &Log{w: f, c: f}, nil
}

// New writes to w (tests).
func New(w io.Writer) *Log { return &Log{w: w} }

// Close closes the file.
func (l *Log) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	return l.c.Close()
}

// Identity is what the proxy learned about a session at authentication.
type Identity struct {
	User         string `json:"user,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	SSHUser      string `json:"ssh_user"`
	Scheme       string `json:"scheme,omitempty"`
	AppGUID      string `json:"app_guid,omitempty"`
	Index        int    `json:"index"`
	ProcessGUID  string `json:"process_guid,omitempty"`
	InstanceGUID string `json:"instance_guid,omitempty"`
	ClientAddr   string `json:"client_addr"`
	// Transport is how the client reached the proxy: "tcp" or "websocket".
	Transport string `json:"transport,omitempty"`
}

// Session collects one session's activity; its methods are safe for concurrent use.
type Session struct {
	log   *Log
	id    Identity
	start time.Time

	mu          sync.Mutex
	channels    map[string]int
	commands    []string
	droppedCmds int
	toBackend   int64
	toClient    int64
	ended       bool
}

type record struct {
	Time    string `json:"time"`
	Event   string `json:"event"`
	Session string `json:"session_id"`
	Identity
	DurationSeconds *float64       `json:"duration_seconds,omitempty"`
	BytesToBackend  *int64         `json:"bytes_to_backend,omitempty"`
	BytesToClient   *int64         `json:"bytes_to_client,omitempty"`
	ChannelTypes    map[string]int `json:"channel_types,omitempty"`
	ExecCommands    []string       `json:"exec_commands,omitempty"`
	DroppedCommands int            `json:"exec_commands_not_recorded,omitempty"`
	EndReason       string         `json:"end_reason,omitempty"`
	ReasonCode      string         `json:"reason_code,omitempty"`
	Reason          string         `json:"reason,omitempty"`
}

// Start writes the session-start event and returns the session to record into.
func (l *Log) Start(id Identity, sessionID string) *Session {
	s := &Session{log: l, id: id, start: time.Now(), channels: map[string]int{}}
	l.write(record{Time: s.start.UTC().Format(time.RFC3339Nano), Event: "session-start", Session: sessionID, Identity: id})
	return s
}

// Refused writes a session-refused event: the user was permitted but no session was relayed
// (the instance could not be reached; every channel open was rejected with reason).
func (l *Log) Refused(id Identity, sessionID, code, reason string) {
	l.write(record{Time: time.Now().UTC().Format(time.RFC3339Nano), Event: "session-refused", Session: sessionID,
		Identity: id, ReasonCode: code, Reason: reason})
}

// Channel records a relayed channel of type t.
func (s *Session) Channel(t string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[t]; !ok && len(s.channels) >= MaxChannelTypes {
		t = "other"
	}
	s.channels[t]++
}

// Command records an exec (or subsystem, as "subsystem:<name>") request, truncated.
func (s *Session) Command(cmd string) {
	if s == nil {
		return
	}
	cmd = logging.CapAt(cmd, MaxCommandBytes)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.commands) >= MaxCommands {
		s.droppedCmds++
		return
	}
	s.commands = append(s.commands, cmd)
}

// Bytes adds relayed channel data.
func (s *Session) Bytes(toBackend, toClient int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.toBackend += toBackend
	s.toClient += toClient
	s.mu.Unlock()
}

// End writes the session-end event (once).
func (s *Session) End(sessionID, reason string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	d := time.Since(s.start).Seconds()
	tb, tc := s.toBackend, s.toClient
	r := record{Time: time.Now().UTC().Format(time.RFC3339Nano), Event: "session-end", Session: sessionID,
		Identity: s.id, DurationSeconds: &d, BytesToBackend: &tb, BytesToClient: &tc,
		ChannelTypes: maps(s.channels), ExecCommands: slices.Clone(s.commands), DroppedCommands: s.droppedCmds,
		EndReason: reason}
	s.mu.Unlock()
	s.log.write(r)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (l *Log) write(r record) { l.writeLine(r) }
