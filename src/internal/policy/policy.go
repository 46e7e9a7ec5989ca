// Package policy is the operator's policy for what an authenticated ssh-proxy user may do:
// which session programs (shell, exec, scp, sftp, other subsystems), pty, environment names,
// local and remote port forwarding (with OpenSSH PermitOpen / PermitListen style lists), and
// how many channels and sessions one connection, user or app instance may hold, for how long.
//
// Everything here is pure and cheap: a decision is taken once per channel open or request and
// returns nil (allowed) or a *Denial with a one-line reason the user sees and a metric kind.
// Agent and X11 forwarding are always refused; nothing configures them.
package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// Policy is the `policy:` block of the ssh-proxy config (docs/policy.md). Default() is today's
// behaviour except where docs/policy.md says why not (env names, sessions per connection).
type Policy struct {
	Shell           bool `yaml:"shell"`
	Exec            bool `yaml:"exec"`
	SCP             bool `yaml:"scp"`
	Pty             bool `yaml:"pty"`
	SFTP            bool `yaml:"sftp"`
	OtherSubsystems bool `yaml:"other_subsystems"`
	// LocalForwarding allows direct-tcpip channels (ssh -L, -D) to PermitOpen's destinations.
	LocalForwarding bool     `yaml:"local_forwarding"`
	PermitOpen      []string `yaml:"permit_open"`
	// RemoteForwarding allows tcpip-forward requests (ssh -R) on PermitListen's addresses.
	RemoteForwarding bool     `yaml:"remote_forwarding"`
	PermitListen     []string `yaml:"permit_listen"`
	// AcceptEnv lists the env request names relayed (patterns with * and ?, case-sensitive).
	AcceptEnv []string `yaml:"accept_env"`
	// MaxSessionsPerConnection caps open session channels on one connection (OpenSSH
	// MaxSessions); MaxChannelsPerConnection caps all open channels. 0 = no cap.
	MaxSessionsPerConnection int `yaml:"max_sessions_per_connection"`
	MaxChannelsPerConnection int `yaml:"max_channels_per_connection"`
	// MaxSessionsPerUser and MaxSessionsPerInstance cap concurrent authenticated connections
	// of one user and to one app instance, across the proxy process. 0 = no cap.
	MaxSessionsPerUser     int `yaml:"max_sessions_per_user"`
	MaxSessionsPerInstance int `yaml:"max_sessions_per_instance"`
	// MaxSessionDuration closes a session channel (shell, exec, subsystem) this long after it
	// opened, with a notice on its stderr. 0 = no limit.
	MaxSessionDuration time.Duration `yaml:"max_session_duration"`
}

// Default values (docs/policy.md says why each is what it is).
const (
	DefaultMaxSessionsPerConnection = 10
	DefaultMaxChannelsPerConnection = 256
)

// DefaultAcceptEnv is what OpenSSH clients send by default (Debian and macOS ssh_config:
// SendEnv LANG LC_*; newer Debian releases add COLORTERM and NO_COLOR) plus TERM for SetEnv
// users. The cf CLI sends no env requests.
var DefaultAcceptEnv = []string{"LANG", "LC_*", "TERM", "COLORTERM", "NO_COLOR"}

// Default is the policy when the config has no `policy:` block.
func Default() Policy {
	return Policy{
		Shell: true, Exec: true, SCP: true, Pty: true, SFTP: true, OtherSubsystems: true,
		LocalForwarding: true, PermitOpen: []string{"any"},
		RemoteForwarding: true, PermitListen: []string{"any"},
		AcceptEnv:                append([]string(nil), DefaultAcceptEnv...),
		MaxSessionsPerConnection: DefaultMaxSessionsPerConnection,
		MaxChannelsPerConnection: DefaultMaxChannelsPerConnection,
	}
}

// Kind labels a denial in metrics and the audit log (a fixed, small set).
type Kind string

// The denial kinds.
const (
	KindShell              Kind = "shell"
	KindExec               Kind = "exec"
	KindSCP                Kind = "scp"
	KindPty                Kind = "pty"
	KindSFTP               Kind = "sftp"
	KindSubsystem          Kind = "subsystem"
	KindLocalForward       Kind = "local-forward"
	KindRemoteForward      Kind = "remote-forward"
	KindEnv                Kind = "env"
	KindAgent              Kind = "agent-forwarding"
	KindX11                Kind = "x11-forwarding"
	KindChannelType        Kind = "channel-type"
	KindSessionsPerConn    Kind = "max-sessions-per-connection"
	KindChannelsPerConn    Kind = "max-channels-per-connection"
	KindSessionsPerUser    Kind = "max-sessions-per-user"
	KindSessionsPerInst    Kind = "max-sessions-per-instance"
	KindMaxSessionDuration Kind = "max-session-duration"
	KindMalformed          Kind = "malformed"
)

// Kinds lists every kind (for pre-registering metric label values).
var Kinds = []Kind{KindShell, KindExec, KindSCP, KindPty, KindSFTP, KindSubsystem, KindLocalForward,
	KindRemoteForward, KindEnv, KindAgent, KindX11, KindChannelType, KindSessionsPerConn,
	KindChannelsPerConn, KindSessionsPerUser, KindSessionsPerInst, KindMaxSessionDuration, KindMalformed}

// Denial is a refused channel or request.
type Denial struct {
	Kind Kind
	// Reason is one line for the user (channel open failure message, or stderr line with a
	// request failure). Attacker-controlled parts are capped and quoted when not printable.
	Reason string
	// final marks a deferred pty denial delivered at the program request (answered AnswerExit).
	final bool
}

func (d *Denial) Error() string { return d.Reason }

// RejectionReason is the channel open failure code for the denial.
func (d *Denial) RejectionReason() ssh.RejectionReason {
	switch d.Kind {
	case KindSessionsPerConn, KindChannelsPerConn, KindSessionsPerUser, KindSessionsPerInst:
		return ssh.ResourceShortage
	case KindChannelType:
		return ssh.UnknownChannelType
	}
	return ssh.Prohibited
}

// StderrLine is the denial as written on a session's stderr: "ssh-proxy: <reason>\r\n" (the
// \r because a pty may be in raw mode).
func (d *Denial) StderrLine() string { return "ssh-proxy: " + d.Reason + "\r\n" }

func deny(k Kind, format string, args ...any) *Denial {
	return &Denial{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// capShow is s as it may appear in a one-line reason: at most about 128 bytes, and quoted with
// escapes when it holds control characters, quotes, backslashes or invalid UTF-8.
func capShow(s string) string {
	const limit = 128
	plain := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' || r == utf8.RuneError {
			plain = false
			break
		}
	}
	if plain {
		return logging.CapAt(s, limit)
	}
	var b strings.Builder
	b.WriteByte('"')
	for i, r := range s {
		if b.Len() >= limit {
			b.WriteString(`"…[truncated ` + strconv.Itoa(len(s)-i) + ` bytes]`)
			return b.String()
		}
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Rules is a validated, compiled Policy; its methods are safe for concurrent use.
type Rules struct {
	p            Policy
	permitOpen   patternList
	permitListen patternList
	env          []string
}

// Compile validates p. Each error is one line naming the key under `policy.`.
func Compile(p Policy) (*Rules, []error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	r := &Rules{p: p}
	var e []error
	r.permitOpen, e = compileList("policy.permit_open", p.PermitOpen, false)
	errs = append(errs, e...)
	r.permitListen, e = compileList("policy.permit_listen", p.PermitListen, true)
	errs = append(errs, e...)
	for i, n := range p.AcceptEnv {
		switch {
		case n == "":
			add(fmt.Sprintf("accept_env[%d]", i), "empty name")
		case strings.ContainsAny(n, "= \t\x00"):
			add(fmt.Sprintf("accept_env[%d]", i), "%s: a name must not contain '=', blanks or NUL", capShow(n))
		default:
			r.env = append(r.env, n)
		}
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"max_sessions_per_connection", p.MaxSessionsPerConnection}, {"max_channels_per_connection", p.MaxChannelsPerConnection},
		{"max_sessions_per_user", p.MaxSessionsPerUser}, {"max_sessions_per_instance", p.MaxSessionsPerInstance}} {
		if c.v < 0 {
			add(c.key, "must not be negative (0 = no cap)")
		}
	}
	if p.MaxChannelsPerConnection > 0 && p.MaxSessionsPerConnection > p.MaxChannelsPerConnection {
		add("max_sessions_per_connection", "must not exceed policy.max_channels_per_connection (%d)", p.MaxChannelsPerConnection)
	}
	if p.MaxSessionDuration < 0 {
		add("max_session_duration", "must not be negative (0 = no limit)")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// Warnings are settings that are valid but probably not meant (one line each, naming the key).
func (r *Rules) Warnings() []string {
	var w []string
	if !r.p.Shell || !r.p.Exec {
		for _, n := range dangerousEnv {
			if r.envAccepted(n) {
				w = append(w, fmt.Sprintf("policy.accept_env: accepts %s, with which a client can run its own code in an allowed program although shell or exec is denied", n))
				break
			}
		}
	}
	if !r.p.LocalForwarding && !r.permitOpen.any {
		w = append(w, "policy.permit_open: ignored while policy.local_forwarding is false")
	}
	if !r.p.RemoteForwarding && !r.permitListen.any {
		w = append(w, "policy.permit_listen: ignored while policy.remote_forwarding is false")
	}
	return w
}

// dangerousEnv are names with which a client makes a program it is allowed to run execute code
// of its choosing (loader, shell start-up files, search paths).
var dangerousEnv = []string{"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "PATH", "IFS", "SHELLOPTS", "PS4"}

// Policy returns the policy the rules were compiled from.
func (r *Rules) Policy() Policy { return r.p }

// MaxSessionDuration is the per-session-channel limit (0 = none).
func (r *Rules) MaxSessionDuration() time.Duration { return r.p.MaxSessionDuration }

// SessionDurationDenial is the notice and audit entry when MaxSessionDuration closes a session.
func (r *Rules) SessionDurationDenial() *Denial {
	return deny(KindMaxSessionDuration, "session closed: it reached the maximum session duration of %s", r.p.MaxSessionDuration)
}

func (r *Rules) envAccepted(name string) bool {
	for _, p := range r.env {
		if glob(p, name) {
			return true
		}
	}
	return false
}

// Answer is how the proxy answers a denied session request so that both the cf CLI and
// OpenSSH show the reason. The cf CLI (util/clissh) reads stderr and the exit status only once
// the program started, and gives up on a failed pty-req without a word; OpenSSH shows stderr
// at any time and carries on after a failed pty-req or env.
type Answer int

// Answers.
const (
	// AnswerFail: reply false and write StderrLine (env, agent, X11, malformed requests).
	AnswerFail Answer = iota
	// AnswerExit: reply true without relaying, write StderrLine, send exit-status
	// DeniedExitStatus and close the channel (shell, exec, scp, sftp, subsystems, duration).
	AnswerExit
	// AnswerDefer: reply true without relaying; the channel's next shell/exec/subsystem
	// request is then answered AnswerExit with this denial (pty: a terminal session is refused
	// with its reason instead of running without the terminal the user asked for).
	AnswerDefer
)

// DeniedExitStatus is the exit status of a session the policy refused (126: the shell's
// "command found but not executable").
const DeniedExitStatus = 126

// Answer says how to answer the request this denial refused.
func (d *Denial) Answer() Answer {
	switch d.Kind {
	case KindShell, KindExec, KindSCP, KindSFTP, KindSubsystem, KindMaxSessionDuration:
		return AnswerExit
	case KindPty:
		if d.final {
			return AnswerExit
		}
		return AnswerDefer
	}
	return AnswerFail
}
