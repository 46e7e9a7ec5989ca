// Package server runs an SSH listener whose connections are admitted by a Gate (which
// authenticates and connects the backend) and then relayed. It owns the handshake deadline,
// the idle timeout, the health endpoint and graceful stop. It is deliberately small so that
// pre-auth limits, PROXY protocol, drain and metrics can be added around handle() later.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/hostkeys"
	"github.com/app-ssh/app-ssh/internal/relay"
)

// Gate admits a connection: it authenticates the password for meta.User() and connects the
// backend. An error should be an *auth.Refusal; its reason is shown to the client and logged.
type Gate interface {
	Admit(ctx context.Context, meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, *relay.Backend, error)
}

// KeyGate is implemented by gates that can also admit public-key logins. OfferKey only
// answers whether a key the client offers would be acceptable (it may not have proven it holds
// the key); AdmitKey runs once the client signed with the key, and alone grants a session.
type KeyGate interface {
	KeysEnabled() bool
	OfferKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error)
	AdmitKey(ctx context.Context, meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, *relay.Backend, error)
}

// Config configures a Server.
type Config struct {
	// Address is the SSH listen address.
	Address string
	// HealthAddress, when not empty, serves HTTP GET / → 200 while the SSH listener is up.
	HealthAddress string
	// HostKeys are presented to clients (at least one).
	HostKeys []ssh.Signer
	// NextHostKeys are announced (hostkeys-00@openssh.com) with HostKeys but not presented,
	// so OpenSSH clients with UpdateHostKeys learn them before a rotation.
	NextHostKeys []ssh.Signer
	// Algorithms restricts ciphers, MACs and key exchanges (empty lists = library defaults).
	Algorithms ssh.Config
	// HandshakeTimeout bounds the SSH handshake including authentication (default 30s).
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no traffic for this long (0 = never).
	IdleTimeout time.Duration
	// ServerVersion is the SSH identification string (default "SSH-2.0-app-ssh-proxy").
	ServerVersion string
	Logger        *slog.Logger
}

// Server is an SSH proxy listener.
type Server struct {
	cfg      Config
	gate     Gate
	announce *hostkeys.Announcer
	logger   *slog.Logger
	ln       net.Listener
	healthLn net.Listener
	serving  atomic.Bool
	started  atomic.Bool
}

// New listens on cfg.Address (and cfg.HealthAddress) right away, so Addr is known before Serve.
func New(cfg Config, gate Gate) (*Server, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("server: no host keys")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 30 * time.Second
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "SSH-2.0-app-ssh-proxy"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	s := &Server{cfg: cfg, gate: gate, logger: logger, ln: ln, announce: hostkeys.New(cfg.HostKeys, cfg.NextHostKeys)}
	if cfg.HealthAddress != "" {
		s.healthLn, err = net.Listen("tcp", cfg.HealthAddress)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("health_check_address: %w", err)
		}
	}
	return s, nil
}

// Addr is the SSH listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// HealthAddr is the health endpoint's address, or nil when off.
func (s *Server) HealthAddr() net.Addr {
	if s.healthLn == nil {
		return nil
	}
	return s.healthLn.Addr()
}

// Serve accepts connections until ctx is cancelled; then it stops listening, closes every open
// connection and returns once every goroutine it started has ended. It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	if s.healthLn != nil {
		hs := &http.Server{Handler: http.HandlerFunc(s.health), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { _ = hs.Serve(s.healthLn) })
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = hs.Shutdown(sctx)
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		s.serving.Store(false)
		s.ln.Close()
	})
	defer stop()

	s.serving.Store(true)
	s.logger.Info("ssh-proxy.started", "address", s.ln.Addr().String())
	var err error
	for {
		c, aerr := s.ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					continue
				}
				err = aerr
				cancel()
			}
			break
		}
		wg.Go(func() { s.handle(ctx, c) })
	}
	s.serving.Store(false)
	s.ln.Close()
	s.logger.Info("ssh-proxy.stopping")
	return err
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !s.serving.Load() {
		http.Error(w, "not serving\n", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) serverConfig(ctx context.Context, remote string, admitted **relay.Backend) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config:        s.cfg.Algorithms,
		ServerVersion: s.cfg.ServerVersion,
		PasswordCallback: func(meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			perms, backend, err := s.gate.Admit(ctx, meta, password)
			if err != nil {
				reason := auth.ReasonOf(err)
				s.logger.Info("ssh-proxy.authentication-refused",
					"ssh_user", meta.User(), "remote_addr", remote, "reason", reason, "error", err.Error())
				return nil, &ssh.BannerError{Err: err, Message: "ssh-proxy: " + reason + "\n"}
			}
			*admitted = backend
			return perms, nil
		},
	}
	if kg, ok := s.gate.(KeyGate); ok && kg.KeysEnabled() {
		cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			return kg.OfferKey(meta, key)
		}
		cfg.VerifiedPublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			perms, backend, err := kg.AdmitKey(ctx, meta, key)
			if err != nil {
				reason := auth.ReasonOf(err)
				s.logger.Info("ssh-proxy.authentication-refused",
					"user", meta.User(), "remote_addr", remote, "method", "publickey", "reason", reason, "error", err.Error())
				return nil, &ssh.BannerError{Err: err, Message: "ssh-proxy: " + reason + "\n"}
			}
			*admitted = backend
			return perms, nil
		}
	}
	for _, k := range s.cfg.HostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	remote := nc.RemoteAddr().String()
	conn := &idleConn{Conn: nc, timeout: s.cfg.IdleTimeout}
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))

	hctx, hcancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	stopH := context.AfterFunc(hctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	var backend *relay.Backend
	sc, chans, reqs, err := ssh.NewServerConn(conn, s.serverConfig(hctx, remote, &backend))
	handshakeInterrupted := !stopH()
	hcancel()
	if err == nil && handshakeInterrupted {
		sc.Close()
		err = errors.New("handshake timed out or server stopping")
	}
	if err != nil {
		if backend != nil {
			backend.Close()
		}
		s.logger.Debug("ssh-proxy.handshake-failed", "remote_addr", remote, "error", err.Error())
		return
	}
	_ = nc.SetDeadline(time.Time{})
	conn.activate()

	t, _ := auth.TargetOf(sc.Permissions)
	attrs := []any{
		"user", t.User, "ssh_user", sc.User(), "scheme", string(t.Scheme), "app_guid", t.AppGUID, "process_guid", t.ProcessGUID,
		"index", t.Index, "instance_guid", sc.Permissions.Extensions[ExtInstanceGUID],
		"remote_addr", remote, "backend_tls", backend.TLS,
	}
	s.logger.Info("ssh-proxy.session-started", attrs...)
	start := time.Now()
	if err := s.announce.Announce(sc); err != nil {
		s.logger.Debug("ssh-proxy.hostkeys-announce-failed", "remote_addr", remote, "error", err.Error())
	}
	relay.RelayWith(ctx, sc, chans, reqs, backend, relay.Options{
		HandleClientRequest: func(req *ssh.Request) bool { return s.announce.HandleRequest(sc, req) },
	})
	s.logger.Info("ssh-proxy.session-ended", append(attrs, "duration_seconds", time.Since(start).Seconds())...)
}

// idleConn pushes the connection deadline forward on every read and write once activated.
type idleConn struct {
	net.Conn
	timeout time.Duration
	active  atomic.Bool
}

func (c *idleConn) activate() {
	if c.timeout > 0 {
		c.active.Store(true)
		c.touch()
	}
}

func (c *idleConn) touch() {
	if c.active.Load() {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
	}
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.touch()
	return c.Conn.Write(b)
}
