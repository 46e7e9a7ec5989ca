package audit

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// Limits on what one channel record keeps.
const (
	MaxEnvNames       = 64
	MaxChannelDenials = 16
)

// Channel directions: who opened it.
const (
	FromClient  = "client"  // session, direct-tcpip (-L, -D)
	FromBackend = "backend" // forwarded-tcpip (-R)
)

// Denial is a refused channel or request as the audit log names it: the policy's metric kind
// and the one-line reason the user was given.
type Denial struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// channelRecord is one line of the channel events: "channel" (written when a channel that was
// open closes), "channel-refused" (an open that was refused) and "request-refused" /
// "remote-forward" (connection-level forwarding requests). session_id is the connection's
// session-start / session-end ID; channel numbers count the connection's channel opens from 0.
type channelRecord struct {
	Time    string `json:"time"`
	Event   string `json:"event"`
	Session string `json:"session_id"`
	Channel *int   `json:"channel,omitempty"`
	Identity
	ChannelType string `json:"channel_type,omitempty"`
	Direction   string `json:"direction,omitempty"`
	RequestType string `json:"request_type,omitempty"`
	StartTime   string `json:"start_time,omitempty"`
	// Program is shell, exec, scp, sftp or subsystem.
	Program   string `json:"program,omitempty"`
	Command   string `json:"command,omitempty"`
	Subsystem string `json:"subsystem,omitempty"`
	Pty       *bool  `json:"pty,omitempty"`
	// ForwardTarget is a direct-tcpip destination or a forwarded-tcpip listen address.
	ForwardTarget string `json:"forward_target,omitempty"`
	ListenAddress string `json:"listen_address,omitempty"`
	// EnvNames are the names of accepted env requests; values are never recorded.
	EnvNames        []string `json:"env_names,omitempty"`
	EnvNamesDropped int      `json:"env_names_not_recorded,omitempty"`
	ExitStatus      *uint32  `json:"exit_status,omitempty"`
	ExitSignal      string   `json:"exit_signal,omitempty"`
	BytesToBackend  *int64   `json:"bytes_to_backend,omitempty"`
	BytesToClient   *int64   `json:"bytes_to_client,omitempty"`
	DurationSeconds *float64 `json:"duration_seconds,omitempty"`
	RecordingFile   string   `json:"recording_file,omitempty"`
	RecordingCapped bool     `json:"recording_capped,omitempty"`
	RecordingError  string   `json:"recording_error,omitempty"`
	Denials         []Denial `json:"denials,omitempty"`
	Denied          *Denial  `json:"denied,omitempty"`
	EndReason       string   `json:"end_reason,omitempty"`
}

// Channel collects one open channel's activity; safe for concurrent use. A nil *Channel (from
// a nil *Session) records nothing.
type Channel struct {
	s         *Session
	sessionID string
	n         int
	typ, dir  string
	start     time.Time

	mu        sync.Mutex
	rec       channelRecord
	toBackend int64
	toClient  int64
	ended     bool
}

// OpenChannel starts the record of channel n (the connection's n-th channel open) of chanType,
// opened from dir (FromClient or FromBackend), on the connection sessionID.
func (s *Session) OpenChannel(sessionID string, n int, chanType, dir string) *Channel {
	if s == nil {
		return nil
	}
	return &Channel{s: s, sessionID: sessionID, n: n, typ: logging.Cap(chanType), dir: dir, start: time.Now()}
}

// Program records what a session channel runs: shell, exec or scp (with its command line,
// capped as session-end's exec_commands are), sftp or subsystem (with its name).
func (c *Channel) Program(program, command, subsystem string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Program = program
	if command != "" {
		c.rec.Command = logging.CapAt(command, MaxCommandBytes)
	}
	if subsystem != "" {
		c.rec.Subsystem = logging.Cap(subsystem)
	}
}

// Pty records that a pty was granted.
func (c *Channel) Pty() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := true
	c.rec.Pty = &t
}

// EnvName records the name of an accepted env request. There is no way to record a value.
func (c *Channel) EnvName(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rec.EnvNames) >= MaxEnvNames {
		c.rec.EnvNamesDropped++
		return
	}
	c.rec.EnvNames = append(c.rec.EnvNames, logging.Cap(name))
}

// ForwardTarget records a direct-tcpip destination or forwarded-tcpip listen address.
func (c *Channel) ForwardTarget(hostPort string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.ForwardTarget = logging.Cap(hostPort)
}

// Exit records the program's exit-status.
func (c *Channel) Exit(status uint32) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.ExitStatus = &status
}

// ExitSignal records the program's exit-signal name (without "SIG").
func (c *Channel) ExitSignal(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.ExitSignal = logging.Cap(name)
}

// Denied records a request refused on this channel (pty, env, exec, ..., or the session
// duration limit closing it).
func (c *Channel) Denied(kind, reason string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rec.Denials) < MaxChannelDenials {
		c.rec.Denials = append(c.rec.Denials, Denial{Kind: kind, Reason: logging.Cap(reason)})
	}
}

// Recording records the cast file's base name, whether its size cap stopped it, and a write
// error that stopped it (nil if none).
func (c *Channel) Recording(file string, capped bool, err error) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.RecordingFile, c.rec.RecordingCapped = file, capped
	if err != nil {
		c.rec.RecordingError = logging.CapError(err)
	}
}

// Bytes adds channel data relayed each way (stderr included).
func (c *Channel) Bytes(toBackend, toClient int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.toBackend += toBackend
	c.toClient += toClient
	c.mu.Unlock()
}

// End writes the "channel" event (once).
func (c *Channel) End(reason string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	r := c.rec
	r.EnvNames = slices.Clone(r.EnvNames)
	r.Denials = slices.Clone(r.Denials)
	tb, tc, n := c.toBackend, c.toClient, c.n
	c.mu.Unlock()
	d := time.Since(c.start).Seconds()
	r.Time, r.Event, r.Session, r.Channel, r.Identity = now(), "channel", c.sessionID, &n, c.s.id
	r.ChannelType, r.Direction, r.StartTime = c.typ, c.dir, c.start.UTC().Format(time.RFC3339Nano)
	r.BytesToBackend, r.BytesToClient, r.DurationSeconds, r.EndReason = &tb, &tc, &d, reason
	if r.Pty == nil && c.typ == "session" {
		f := false
		r.Pty = &f
	}
	c.s.log.writeLine(r)
}

// ChannelRefused writes a "channel-refused" event: channel n of chanType from dir was not
// opened (target: the forward's host:port when there is one).
func (s *Session) ChannelRefused(sessionID string, n int, chanType, dir, target string, d Denial) {
	if s == nil {
		return
	}
	d.Reason = logging.Cap(d.Reason)
	s.log.writeLine(channelRecord{Time: now(), Event: "channel-refused", Session: sessionID, Channel: &n, Identity: s.id,
		ChannelType: logging.Cap(chanType), Direction: dir, ForwardTarget: logging.Cap(target), Denied: &d})
}

// RemoteForward writes a "remote-forward" event: a tcpip-forward (-R) on listen was granted.
func (s *Session) RemoteForward(sessionID, listen string) {
	if s == nil {
		return
	}
	s.log.writeLine(channelRecord{Time: now(), Event: "remote-forward", Session: sessionID, Identity: s.id,
		RequestType: "tcpip-forward", ListenAddress: logging.Cap(listen)})
}

// RequestRefused writes a "request-refused" event for a connection-level request (tcpip-forward
// and its kin); listen is the requested address when known.
func (s *Session) RequestRefused(sessionID, reqType, listen string, d Denial) {
	if s == nil {
		return
	}
	d.Reason = logging.Cap(d.Reason)
	s.log.writeLine(channelRecord{Time: now(), Event: "request-refused", Session: sessionID, Identity: s.id,
		RequestType: logging.Cap(reqType), ListenAddress: logging.Cap(listen), Denied: &d})
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// writeLine appends one JSON line: every event, connection or channel, goes through it.
func (l *Log) writeLine(v any) {
	if l == nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}
