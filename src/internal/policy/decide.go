package policy

import (
	"encoding/binary"
	"net"
	"strconv"
	"sync"

	"github.com/app-ssh/app-ssh/internal/scp"
	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

// Channel types and request names the decisions know.
const (
	ChanSession             = "session"
	ChanDirectTCPIP         = "direct-tcpip"
	ChanForwardedTCPIP      = "forwarded-tcpip"
	ChanDirectStreamlocal   = "direct-streamlocal@openssh.com"
	ChanForwardedStreamloc  = "forwarded-streamlocal@openssh.com"
	ChanX11                 = "x11"
	ChanAgent               = "auth-agent@openssh.com"
	ReqTCPIPForward         = "tcpip-forward"
	ReqStreamlocalForward   = "streamlocal-forward@openssh.com"
	ReqAgent                = "auth-agent-req@openssh.com"
	ReqX11                  = "x11-req"
	policyForwardingDenied  = "the operator's policy"
	maxSubsystemNameInShown = 64
)

// Channel is what a permitted channel open is (for the audit log).
type Channel struct {
	Type string
	// Target is the direct-tcpip destination or the forwarded-tcpip listen address, host:port.
	Target string
}

// Channel decides a channel the client opens.
func (r *Rules) Channel(chanType string, extra []byte) (Channel, *Denial) {
	c := Channel{Type: chanType}
	switch chanType {
	case ChanSession:
		return c, nil
	case ChanDirectTCPIP:
		if !r.p.LocalForwarding {
			return c, deny(KindLocalForward, "port forwarding (-L, -D) is disabled by %s", policyForwardingDenied)
		}
		d, err := payload.ParseDirectTCPIP(extra)
		if err != nil {
			if r.permitOpen.any {
				return c, nil // relayed as is; the instance's sshd judges the payload
			}
			return c, deny(KindMalformed, "malformed direct-tcpip channel request")
		}
		c.Target = net.JoinHostPort(d.Host, strconv.FormatUint(uint64(d.Port), 10))
		if !r.permitOpen.permits(d.Host, d.Port) {
			return c, deny(KindLocalForward, "port forwarding to %s is not permitted by %s", capShow(c.Target), policyForwardingDenied)
		}
		return c, nil
	case ChanDirectStreamlocal:
		// A socket path is not a host:port: only an unrestricted list allows it.
		if !r.p.LocalForwarding || !r.permitOpen.any {
			return c, deny(KindLocalForward, "forwarding to Unix sockets is not permitted by %s", policyForwardingDenied)
		}
		return c, nil
	}
	return c, refuseOther(chanType)
}

// refuseOther refuses a channel type neither direction allows: agent and X11 forwarding (in
// both directions) and any type this proxy does not know.
func refuseOther(chanType string) *Denial {
	switch chanType {
	case ChanX11:
		return deny(KindX11, "X11 forwarding is not supported")
	case ChanAgent:
		return deny(KindAgent, "agent forwarding is not supported")
	}
	return deny(KindChannelType, "channel type %s is not supported", capShow(chanType))
}

// BackendChannel decides a channel the instance's sshd opens toward the client.
func (r *Rules) BackendChannel(chanType string, extra []byte) (Channel, *Denial) {
	c := Channel{Type: chanType}
	switch chanType {
	case ChanForwardedTCPIP:
		if !r.p.RemoteForwarding {
			return c, deny(KindRemoteForward, "remote port forwarding (-R) is disabled by %s", policyForwardingDenied)
		}
		host, port, ok := parseForwarded(extra)
		if !ok {
			if r.permitListen.any {
				return c, nil
			}
			return c, deny(KindMalformed, "malformed forwarded-tcpip channel request")
		}
		c.Target = net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
		// A listen requested on port 0 reports the port the sshd allocated.
		if !r.permitListen.permits(host, port) && !r.permitListen.permits(host, 0) {
			return c, deny(KindRemoteForward, "remote forwarding from %s is not permitted by %s", capShow(c.Target), policyForwardingDenied)
		}
		return c, nil
	case ChanForwardedStreamloc:
		if !r.p.RemoteForwarding || !r.permitListen.any {
			return c, deny(KindRemoteForward, "remote forwarding of Unix sockets is not permitted by %s", policyForwardingDenied)
		}
		return c, nil
	}
	return c, refuseOther(chanType)
}

// parseForwarded reads the listen address and port at the start of a forwarded-tcpip
// channel's extra data (RFC 4254 7.2; the originator that follows is not needed).
func parseForwarded(b []byte) (string, uint32, bool) {
	if len(b) < 4 {
		return "", 0, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) || n > payload.MaxHostLen || len(b)-4-int(n) < 4 {
		return "", 0, false
	}
	host := string(b[4 : 4+n])
	return host, binary.BigEndian.Uint32(b[4+n:]), true
}

// GlobalRequest decides a global request from the client. Requests other than forwarding ones
// (keepalives, no-more-sessions, host-key protocol, ...) are allowed.
func (r *Rules) GlobalRequest(reqType string, data []byte) (listen string, d *Denial) {
	switch reqType {
	case ReqTCPIPForward:
		f, err := payload.ParseTCPIPForward(data)
		if err == nil {
			listen = net.JoinHostPort(f.Address, strconv.FormatUint(uint64(f.Port), 10))
		}
		if !r.p.RemoteForwarding {
			return listen, deny(KindRemoteForward, "remote port forwarding (-R) is disabled by %s", policyForwardingDenied)
		}
		if err != nil {
			if r.permitListen.any {
				return "", nil
			}
			return "", deny(KindMalformed, "malformed tcpip-forward request")
		}
		if !r.permitListen.permits(f.Address, f.Port) {
			return listen, deny(KindRemoteForward, "remote forwarding on %s is not permitted by %s", capShow(listen), policyForwardingDenied)
		}
		return listen, nil
	case ReqStreamlocalForward:
		if !r.p.RemoteForwarding || !r.permitListen.any {
			return "", deny(KindRemoteForward, "remote forwarding of Unix sockets is not permitted by %s", policyForwardingDenied)
		}
	}
	return "", nil
}

// Program is what a session channel runs.
type Program string

// Programs.
const (
	ProgramShell     Program = "shell"
	ProgramExec      Program = "exec"
	ProgramSCP       Program = "scp"
	ProgramSFTP      Program = "sftp"
	ProgramSubsystem Program = "subsystem"
)

// Request is a decoded session channel request (for the audit log and recording).
type Request struct {
	Type    string
	Program Program // set for shell, exec and subsystem requests
	Command string  // exec command line (uncapped: cap before logging)
	// Subsystem is the subsystem name.
	Subsystem string
	EnvName   string // env requests: the name only, never the value
	// Term, Cols and Rows come from pty-req; Cols and Rows also from window-change.
	Term       string
	Cols, Rows uint32
}

// SessionRequest decides a request on a session channel. Requests the policy does not govern
// (window-change, signal, break, eow@openssh.com, ...) are allowed and passed through.
func (r *Rules) SessionRequest(reqType string, data []byte) (Request, *Denial) {
	q := Request{Type: reqType}
	switch reqType {
	case "shell":
		q.Program = ProgramShell
		if !r.p.Shell {
			return q, deny(KindShell, "interactive shells are disabled by %s", policyForwardingDenied)
		}
	case "exec":
		q.Program = ProgramExec
		cmd, err := payload.ParseExec(data)
		if err != nil {
			if r.p.Exec {
				return q, nil // relayed; the instance's sshd refuses it
			}
			return q, deny(KindMalformed, "malformed exec request")
		}
		q.Command = cmd
		if IsSCP(cmd) {
			q.Program = ProgramSCP
			if !r.p.SCP {
				return q, deny(KindSCP, "scp is disabled by %s", policyForwardingDenied)
			}
			return q, nil
		}
		if !r.p.Exec {
			return q, deny(KindExec, "running commands is disabled by %s", policyForwardingDenied)
		}
	case "subsystem":
		name, err := payload.ParseSubsystem(data)
		q.Program, q.Subsystem = ProgramSubsystem, name
		if err != nil {
			if r.p.SFTP && r.p.OtherSubsystems {
				return q, nil
			}
			return q, deny(KindMalformed, "malformed subsystem request")
		}
		if name == "sftp" {
			q.Program = ProgramSFTP
			if !r.p.SFTP {
				return q, deny(KindSFTP, "sftp is disabled by %s", policyForwardingDenied)
			}
			return q, nil
		}
		if !r.p.OtherSubsystems {
			return q, deny(KindSubsystem, "subsystem %s is disabled by %s", capShow(name), policyForwardingDenied)
		}
	case "pty-req":
		p, err := payload.ParsePtyReq(data)
		if err == nil {
			q.Term, q.Cols, q.Rows = p.Term, p.Cols, p.Rows
		}
		if !r.p.Pty {
			return q, deny(KindPty, "terminals (pty) are disabled by %s", policyForwardingDenied)
		}
	case "window-change":
		if w, err := payload.ParseWindowChange(data); err == nil {
			q.Cols, q.Rows = w.Cols, w.Rows
		}
	case "env":
		e, err := payload.ParseEnv(data)
		if err != nil {
			return q, deny(KindMalformed, "malformed env request")
		}
		q.EnvName = e.Name
		if !r.envAccepted(e.Name) {
			return q, deny(KindEnv, "environment variable %s is not accepted by %s", capShow(e.Name), policyForwardingDenied)
		}
	case ReqAgent:
		return q, deny(KindAgent, "agent forwarding is not supported")
	case ReqX11:
		return q, deny(KindX11, "X11 forwarding is not supported")
	}
	return q, nil
}

// IsSCP reports whether an exec command line is an scp server invocation as OpenSSH's scp -O
// sends it ("scp [-v] [-r] [-p] [-d] -t|-f [--] PATH", flags possibly combined). The program
// must be the bare word scp (found on the instance's PATH, which env requests cannot change
// under the default accept_env), not a path a user may have uploaded, and the line must need
// no shell (no separators, substitutions or redirections): internal/scp's parser decides.
func IsSCP(cmd string) bool {
	if len(cmd) < 4 || cmd[:4] != "scp " && cmd[:4] != "scp\t" {
		return false
	}
	_, err := scp.Parse(cmd)
	return err == nil
}

// Conn counts one connection's open channels; safe for concurrent use.
type Conn struct {
	r        *Rules
	mu       sync.Mutex
	sessions int
	channels int
}

// NewConn starts counting for a new connection.
func (r *Rules) NewConn() *Conn { return &Conn{r: r} }

// Acquire reserves room for an open channel of chanType (either direction); release (called
// once, when the channel closes) frees it. Call after Channel/BackendChannel allowed it.
func (c *Conn) Acquire(chanType string) (release func(), d *Denial) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.r.p
	if p.MaxChannelsPerConnection > 0 && c.channels >= p.MaxChannelsPerConnection {
		return nil, deny(KindChannelsPerConn, "too many open channels on this connection (at most %d)", p.MaxChannelsPerConnection)
	}
	session := chanType == ChanSession
	if session && p.MaxSessionsPerConnection > 0 && c.sessions >= p.MaxSessionsPerConnection {
		return nil, deny(KindSessionsPerConn, "too many open sessions on this connection (at most %d)", p.MaxSessionsPerConnection)
	}
	c.channels++
	if session {
		c.sessions++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.channels--
			if session {
				c.sessions--
			}
			c.mu.Unlock()
		})
	}, nil
}

// Open reports the connection's open channels and, of those, sessions.
func (c *Conn) Open() (channels, sessions int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.channels, c.sessions
}
