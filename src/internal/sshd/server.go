// Package sshd is the in-container SSH daemon: public-key (or no) authentication, session
// channels (pty, shell, exec, env, signals, exit status, sftp, built-in commands such as scp),
// -L/-R forwarding, keepalive and idle timeout. It is a drop-in for diego-sshd.
package sshd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/quickack"
	"github.com/app-ssh/app-ssh/internal/sshident"
)

// BuiltinRunner runs a built-in command on a session's streams and returns its exit status.
type BuiltinRunner func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, workDir string) int

// Builtin inspects an exec command line and returns a runner when the daemon serves that
// command itself (scp -t / scp -f); ok=false sends the command to the shell.
type Builtin func(cmdline string) (run BuiltinRunner, ok bool)

// Options configure a Server.
type Options struct {
	Config *sshdconfig.Resolved
	Logger *slog.Logger
	// DaemonEnv is the daemon environment passed to processes when inherit_daemon_env is on
	// (already stripped of secrets by the caller). Ignored otherwise.
	DaemonEnv []string
	// Builtin, when set, can serve exec commands natively.
	Builtin Builtin
	// HandshakeTimeout bounds version exchange, key exchange and authentication (default 30s).
	HandshakeTimeout time.Duration
	// DialTimeout bounds direct-tcpip dials (default 10s).
	DialTimeout time.Duration
}

// Server serves SSH connections on listeners.
type Server struct {
	opts     Options
	log      *slog.Logger
	sshCfg   *ssh.ServerConfig
	authKeys map[string]struct{} // wire-encoded authorized keys
	baseEnv  []string            // environment every process starts from
	homeDir  string
	shell    string

	wg sync.WaitGroup // connections
}

const verifiedKeyExt = "app-ssh-verified-key"

// New builds a Server from a validated configuration.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Config.HostKey == nil {
		return nil, errors.New("sshd: a validated configuration with a host key is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, log: opts.Logger, authKeys: map[string]struct{}{}}
	for _, k := range opts.Config.AuthorizedKeys {
		s.authKeys[string(k.Marshal())] = struct{}{}
	}
	cfg := &ssh.ServerConfig{ServerVersion: "SSH-2.0-app-ssh"}
	opts.Config.SSHConfig(&cfg.Config)
	cfg.AddHostKey(opts.Config.HostKey)
	cfg.NoClientAuth = opts.Config.AllowUnauthenticatedClients
	if len(s.authKeys) > 0 {
		// Called for every offered key, before any signature is checked: it only says whether
		// the key would be acceptable. The decision is taken in VerifiedPublicKeyCallback.
		cfg.PublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if !s.authorized(key) {
				return nil, errors.New("key not authorized")
			}
			return &ssh.Permissions{}, nil
		}
		cfg.VerifiedPublicKeyCallback = func(_ ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			if !s.authorized(key) {
				return nil, errors.New("key not authorized")
			}
			return &ssh.Permissions{Extensions: map[string]string{verifiedKeyExt: ssh.FingerprintSHA256(key)}}, nil
		}
	}
	cfg.AuthLogCallback = func(md ssh.ConnMetadata, method string, err error) {
		if err != nil && method != "none" {
			s.log.Debug("auth-attempt-failed", "remote", md.RemoteAddr().String(), "method", method)
		}
	}
	s.sshCfg = cfg
	s.homeDir, s.baseEnv = processEnv(opts.Config.InheritDaemonEnv, opts.DaemonEnv)
	s.shell = findShell()
	return s, nil
}

func (s *Server) authorized(key ssh.PublicKey) bool {
	_, ok := s.authKeys[string(key.Marshal())]
	return ok
}

// Serve accepts connections on ln until ctx is done or ln fails, then closes ln, ends every
// connection (their processes get SIGHUP) and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if tempDelay == 0 {
					tempDelay = 5 * time.Millisecond
				} else {
					tempDelay = min(2*tempDelay, time.Second)
				}
				select {
				case <-time.After(tempDelay):
				case <-ctx.Done():
					return nil
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		tempDelay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(ctx, c)
		}()
	}
}

// conn is one authenticated SSH connection.
type conn struct {
	srv    *Server
	ctx    context.Context
	cancel context.CancelFunc
	sc     *ssh.ServerConn
	log    *slog.Logger
	act    *activity
	wg     sync.WaitGroup // channels, listeners, keepalive

	mu       sync.Mutex
	forwards map[string]net.Listener
}

func (s *Server) handleConn(parent context.Context, nc net.Conn) {
	remote := nc.RemoteAddr().String()
	act := newActivity()
	_ = nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	stopHS := context.AfterFunc(parent, func() { nc.Close() })
	// No delayed-ACK stalls while the client's small handshake packets wait behind Nagle.
	nc, qa := quickack.Wrap(nc)
	// A client line that is not an SSH-2.0 identification is answered with OpenSSH's reason.
	sc, chans, reqs, err := ssh.NewServerConn(sshident.Wrap(nc), s.sshCfg)
	qa.Done()
	stopped := stopHS()
	if err != nil {
		nc.Close()
		s.log.Info("handshake-failed", "remote", remote, "error", logging.CapError(err))
		return
	}
	if !stopped {
		sc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	// Defence in depth: unless the no-auth mode let it in, the connection must carry the mark
	// only VerifiedPublicKeyCallback sets (a key whose signature was checked).
	if !s.opts.Config.AllowUnauthenticatedClients &&
		(sc.Permissions == nil || sc.Permissions.Extensions[verifiedKeyExt] == "") {
		s.log.Error("connection-without-verified-key", "remote", remote)
		sc.Close()
		return
	}
	ctx, cancel := context.WithCancel(parent)
	c := &conn{
		srv: s, ctx: ctx, cancel: cancel, sc: sc, act: act,
		log:      s.log.With("remote", remote, "session_id", shortID(sc.SessionID())),
		forwards: map[string]net.Listener{},
	}
	fields := []any{"user", logging.Cap(sc.User())}
	if sc.Permissions != nil && sc.Permissions.Extensions[verifiedKeyExt] != "" {
		fields = append(fields, "key_fingerprint", sc.Permissions.Extensions[verifiedKeyExt])
	}
	c.log.Info("connection-opened", fields...)

	stopCtx := context.AfterFunc(ctx, func() { sc.Close() })
	defer stopCtx()

	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.keepalive() }()
	go func() { defer c.wg.Done(); c.idleWatch() }()
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.globalRequests(reqs) }()

	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			act.touch()
			c.wg.Add(1)
			go func() { defer c.wg.Done(); c.runSession(ch, creqs) }()
		case "direct-tcpip":
			c.wg.Add(1)
			go func() { defer c.wg.Done(); c.directTCPIP(nch) }()
		default:
			_ = nch.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
	// The transport is gone: stop everything that belongs to the connection.
	cancel()
	c.closeForwards()
	sc.Close()
	c.wg.Wait()
	c.log.Info("connection-closed")
}

func shortID(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// keepalive sends keepalive@openssh.com every interval and closes the connection after
// KeepaliveCountMax intervals without any reply.
func (c *conn) keepalive() {
	interval := c.srv.opts.Config.KeepaliveInterval
	if interval <= 0 {
		return
	}
	maxMissed := max(c.srv.opts.Config.KeepaliveCountMax, 1)
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending chan struct{}
	missed := 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if pending != nil {
			select {
			case <-pending:
				pending = nil
				missed = 0
			default:
				missed++
				if missed >= maxMissed {
					c.log.Info("keepalive-timeout", "missed", missed)
					c.cancel()
					return
				}
				continue
			}
		}
		done := make(chan struct{})
		pending = done
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			// Returns when the reply arrives or the connection closes (cancel closes it).
			_, _, _ = c.sc.SendRequest("keepalive@openssh.com", true, nil)
			close(done)
		}()
	}
}

// idleWatch closes the connection when no channel data moved for IdleTimeout.
func (c *conn) idleWatch() {
	idle := c.srv.opts.Config.IdleTimeout
	if idle <= 0 {
		return
	}
	step := min(max(idle/4, 10*time.Millisecond), 5*time.Second)
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			if c.act.idleFor() >= idle {
				c.log.Info("idle-timeout", "idle_timeout", idle.String())
				c.cancel()
				return
			}
		}
	}
}

func (c *conn) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		switch req.Type {
		case "tcpip-forward":
			c.tcpipForward(req)
		case "cancel-tcpip-forward":
			c.cancelTCPIPForward(req)
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// processEnv computes the home directory and the environment every process starts from, as
// diego-sshd does: PATH=/bin:/usr/bin and LANG=en_US.UTF8, with inherit the daemon's own
// environment except PATH, and HOME and USER of the daemon.
func processEnv(inherit bool, daemonEnv []string) (string, []string) {
	home, name := os.Getenv("HOME"), os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		if home == "" {
			home = u.HomeDir
		}
		if name == "" {
			name = u.Username
		}
	}
	env := newEnvList()
	env.set("PATH", "/bin:/usr/bin")
	env.set("LANG", "en_US.UTF8")
	if inherit {
		for _, kv := range daemonEnv {
			k, v, ok := strings.Cut(kv, "=")
			if ok && k != "" && k != "PATH" {
				env.set(k, v)
			}
		}
	}
	env.set("HOME", home)
	env.set("USER", name)
	if fi, err := os.Stat(home); home == "" || err != nil || !fi.IsDir() {
		home = "/"
	}
	return home, env.list()
}

func findShell() string {
	for _, p := range []string{"/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return "/bin/sh"
}

// envList is an ordered environment with replace-on-set semantics.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}
