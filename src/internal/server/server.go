// Package server runs an SSH listener whose connections are admitted by a Login (which
// decides the login and connects the backend) and then relayed. Around each connection it enforces
// the pre-authentication defences (total connection cap, a bound on unauthenticated connections
// that sheds the least-progressed ones, per-source penalties where client addresses are known,
// the login grace time, a pre-auth idle timeout, max auth tries), reads PROXY protocol headers
// from allow-listed load balancers, keeps sessions alive (keepalive, session idle timeout,
// maximum connection duration), drains on stop, and feeds metrics and the audit log.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/audit"
	"github.com/app-ssh/app-ssh/internal/hostkeys"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/liveness"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/policy"
	"github.com/app-ssh/app-ssh/internal/proxyproto"
	"github.com/app-ssh/app-ssh/internal/quickack"
	"github.com/app-ssh/app-ssh/internal/recording"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/sshident"
)

// Login decides logins (*login.Login satisfies it). Errors are *login.Refusal: the server
// shows the message as the banner and penalises by its blame. A grant may carry a refusal to
// show on channel opens instead of a backend.
type Login interface {
	Password(ctx context.Context, user string, password []byte) (*login.Grant, error)
	// KeysEnabled reports whether public-key logins exist; OfferKey only answers whether an
	// offered key would be acceptable (the client may not hold it); PublicKey runs once the
	// client signed with the key, and alone grants.
	KeysEnabled() bool
	OfferKey(user string, key ssh.PublicKey) error
	PublicKey(ctx context.Context, user string, key ssh.PublicKey) (*login.Grant, error)
}

// RefusalCloseDelay is how long a connection whose grant carries a refusal stays open after
// its first rejected channel (so the rejection reaches the client before the close), and
// RefusalLinger how long it stays open at most.
const (
	RefusalCloseDelay = time.Second
	RefusalLinger     = 5 * time.Second
)

// DrainMessage is written to the stderr of every open session when the drain timeout ends it.
const DrainMessage = "\r\nssh-proxy: this proxy is shutting down and is closing the connection; reconnect to continue.\r\n"

// IdleMessage is written to the stderr of every open session closed by the idle timeout.
const IdleMessage = "\r\nssh-proxy: closing the connection after the idle timeout.\r\n"

// MaxDurationMessage is written to the stderr of every open session closed because the
// connection reached the maximum connection duration.
const MaxDurationMessage = "\r\nssh-proxy: closing the connection: it has reached the maximum connection duration; reconnect to continue.\r\n"

// DefaultHandshakeTimeout is the login grace time when Config.HandshakeTimeout is zero
// (OpenSSH's LoginGraceTime default).
const DefaultHandshakeTimeout = 120 * time.Second

// Config configures a Server. Zero values turn the optional defences off.
type Config struct {
	// Address is the SSH listen address (TCP).
	Address string
	// DisableTCP: no TCP listener on Address; only Listeners serve (the proxy's "WebSocket
	// only" mode).
	DisableTCP bool
	// Listeners are further listeners (the WebSocket one) whose connections are served exactly
	// like the TCP listener's. The server does not know what made a connection except through
	// the connection itself: a Transport() string method labels metrics, logs and audit
	// ("tcp" without one), and a Forwarded() bool method says whether its RemoteAddr is the
	// client's own address (for penalties). TCP-only features (PROXY protocol, quick ACKs)
	// apply only to connections without a Transport method. New takes ownership: Serve closes
	// them when it drains, and New closes them when it fails.
	Listeners []net.Listener
	// HealthAddress, when not empty, serves HTTP GET / → 200 while the SSH listener is up
	// (503 while draining).
	HealthAddress string
	// HostKeys are presented to clients (at least one).
	HostKeys []ssh.Signer
	// NextHostKeys are announced (hostkeys-00@openssh.com) with HostKeys but not presented,
	// so OpenSSH clients with UpdateHostKeys learn them before a rotation.
	NextHostKeys []ssh.Signer
	// Algorithms restricts ciphers, MACs and key exchanges (empty lists = library defaults).
	Algorithms ssh.Config
	// HandshakeTimeout is the login grace time: the SSH handshake including authentication
	// must finish within it (default DefaultHandshakeTimeout). It is a connection deadline, no
	// signal involved.
	HandshakeTimeout time.Duration
	// PreauthIdleTimeout closes an unauthenticated connection silent for this long (time the
	// proxy spends on UAA, CC, the BBS and the backend does not count). 0 = off.
	PreauthIdleTimeout time.Duration
	// IdleTimeout closes a session after this long without traffic on the client connection,
	// as diego-ssh does: channel data either way, channel requests either way, global requests
	// from the client (keepalive@openssh.com, the cf CLI's keepalive@cloudfoundry.org) and the
	// replies to them. Keepalive probes sent toward the client (the proxy's own, or the
	// instance sshd's relayed) do not count: they would keep every live client open. 0 = never.
	IdleTimeout time.Duration
	// MaxConnectionDuration closes a session this long after it was established, whatever its
	// traffic, with MaxDurationMessage on its open sessions' stderr. 0 = no limit.
	MaxConnectionDuration time.Duration
	// MaxAuthTries is the failed authentication attempts allowed per connection (default 6).
	MaxAuthTries int
	// MaxConnections caps open client connections, the hard bound on descriptors: beyond it a
	// new connection is closed at once. 0 = no cap.
	MaxConnections int
	// Preauth bounds unauthenticated connections by shedding the least-progressed ones (nil =
	// no bound).
	Preauth *limits.Preauth
	// Penalties refuses penalised sources (nil = off). Only connections whose client address
	// is known are penalised or refused: those a PROXY header announced, and all others when
	// ClientAddressesPreserved says the network in front of the proxy keeps client addresses.
	Penalties                *limits.Penalties
	ClientAddressesPreserved bool
	// KeepaliveInterval sends keepalive@openssh.com this often; once KeepaliveCountMax of them
	// are unanswered the connection is closed (OpenSSH ClientAliveInterval/CountMax, see
	// internal/liveness). 0 = off.
	KeepaliveInterval time.Duration
	KeepaliveCountMax int
	// ProxyProtocol, when set, reads PROXY v1/v2 headers from its allow-listed peers (and
	// refuses headers from everyone else).
	ProxyProtocol *proxyproto.Policy
	// DrainTimeout is how long sessions may continue once Serve's context ends; then they
	// are closed with DrainMessage. 0 = close at once.
	DrainTimeout time.Duration
	// Metrics and Audit are optional.
	Metrics *metrics.Metrics
	Audit   *audit.Log
	// Sessions, when set, is told of every session that reached an instance (applog.Emitter:
	// the app's log lines and the ssh-connections gauge); never of refused ones.
	Sessions SessionObserver
	// ServerVersion is the SSH identification string (default "SSH-2.0-app-ssh-proxy").
	ServerVersion string
	Logger        *slog.Logger
	// Policy is the operator's policy (docs/policy.md; nil = relay everything); Limiter its
	// per-user and per-instance caps (nil = none); Recording records pty sessions (nil = off).
	Policy    *policy.Rules
	Limiter   *policy.Limiter
	Recording *recording.Manager
}

// SessionObserver is told when a session to an instance starts, with the login's grant and
// the client's address; the func it returns is called when the session ends. It must not block.
type SessionObserver interface {
	SessionStarted(grant *login.Grant, clientAddr string) (ended func())
}

// Server is an SSH proxy listener.
type Server struct {
	cfg      Config
	login    Login
	announce *hostkeys.Announcer
	logger   *slog.Logger
	ln       net.Listener   // the TCP listener; nil with DisableTCP
	lns      []net.Listener // every listener Serve accepts from
	healthLn net.Listener
	serving  atomic.Bool
	draining atomic.Bool
	started  atomic.Bool
	open     atomic.Int64

	mu       sync.Mutex
	sessions map[*tracked]struct{}
}

// New listens on cfg.Address (and cfg.HealthAddress) right away, so Addr is known before Serve.
func New(cfg Config, lg Login) (*Server, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("server: no host keys")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "SSH-2.0-app-ssh-proxy"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if l, ok := lg.(*login.Login); ok && l.Metrics == nil {
		l.Metrics = cfg.Metrics
	}
	s := &Server{cfg: cfg, login: lg, logger: logger, announce: hostkeys.New(cfg.HostKeys, cfg.NextHostKeys),
		sessions: map[*tracked]struct{}{}}
	fail := func(err error) (*Server, error) {
		for _, l := range s.lns {
			l.Close()
		}
		for _, l := range cfg.Listeners {
			l.Close()
		}
		return nil, err
	}
	if !cfg.DisableTCP {
		ln, err := net.Listen("tcp", cfg.Address)
		if err != nil {
			return fail(fmt.Errorf("address: %w", err))
		}
		s.ln = ln
		s.lns = append(s.lns, ln)
	}
	if len(s.lns)+len(cfg.Listeners) == 0 {
		return fail(errors.New("server: no listener (the TCP listener is disabled and there is no other)"))
	}
	if cfg.HealthAddress != "" {
		hl, err := net.Listen("tcp", cfg.HealthAddress)
		if err != nil {
			return fail(fmt.Errorf("health_check_address: %w", err))
		}
		s.healthLn = hl
	}
	s.lns = append(s.lns, cfg.Listeners...)
	return s, nil
}

// Addr is the TCP SSH listener's address, or nil when it is disabled.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// HealthAddr is the health endpoint's address, or nil when off.
func (s *Server) HealthAddr() net.Addr {
	if s.healthLn == nil {
		return nil
	}
	return s.healthLn.Addr()
}

// Sessions is the number of sessions being relayed now.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Serve accepts connections until ctx is cancelled. Then it drains: it stops listening (the
// health endpoint answers 503), refuses handshakes in progress, lets sessions continue for up
// to DrainTimeout, then closes the rest with DrainMessage. It returns once every goroutine it
// started has ended. It may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("server: Serve called twice")
	}
	acceptCtx, cancelAccept := context.WithCancel(ctx)
	defer cancelAccept()
	// Sessions outlive the accept context by up to the drain timeout.
	sessCtx, cancelSessions := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSessions()

	var wg sync.WaitGroup
	if s.healthLn != nil {
		hs := &http.Server{Handler: http.HandlerFunc(s.health), ReadHeaderTimeout: 5 * time.Second}
		var hwg sync.WaitGroup
		hwg.Go(func() { _ = hs.Serve(s.healthLn) })
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = hs.Shutdown(sctx)
			hwg.Wait()
		}()
	}
	closeAll := func() {
		for _, ln := range s.lns {
			ln.Close()
		}
	}
	stop := context.AfterFunc(acceptCtx, func() {
		s.serving.Store(false)
		closeAll()
	})
	defer stop()

	s.serving.Store(true)
	for _, ln := range s.lns {
		s.logger.Info("ssh-proxy.started", "address", ln.Addr().String(), "transport", listenerTransport(ln))
	}
	// One accept loop per listener; the first listener to fail stops them all.
	var errOnce sync.Once
	var err error
	var loops sync.WaitGroup
	for _, ln := range s.lns {
		loops.Go(func() {
			for {
				c, aerr := ln.Accept()
				if aerr != nil {
					if acceptCtx.Err() == nil {
						var ne net.Error
						if errors.As(aerr, &ne) && ne.Timeout() {
							continue
						}
						errOnce.Do(func() { err = aerr })
						cancelAccept()
					}
					return
				}
				wg.Go(func() { s.handle(acceptCtx, sessCtx, c) })
			}
		})
	}
	loops.Wait()
	s.serving.Store(false)
	closeAll()
	s.drain(&wg, cancelSessions)
	return err
}

// TransportTCP labels connections that do not name their transport.
const TransportTCP = metrics.TransportTCP

// transportOf is the connection's Transport(), or TransportTCP.
func transportOf(c net.Conn) string {
	if t, ok := c.(interface{ Transport() string }); ok {
		return t.Transport()
	}
	return TransportTCP
}

// listenerTransport is the listener's Transport() for the start log line, or TransportTCP.
func listenerTransport(ln net.Listener) string {
	if t, ok := ln.(interface{ Transport() string }); ok {
		return t.Transport()
	}
	return TransportTCP
}

// drain waits for the sessions (and handshakes) in wg to end, at most DrainTimeout; then it
// tells the remaining sessions why and closes them.
func (s *Server) drain(wg *sync.WaitGroup, cancelSessions context.CancelFunc) {
	s.draining.Store(true)
	s.cfg.Metrics.SetDraining(true)
	s.logger.Info("ssh-proxy.draining", "sessions", s.Sessions(), "drain_timeout_seconds", s.cfg.DrainTimeout.Seconds())
	done := make(chan struct{})
	var waiter sync.WaitGroup
	waiter.Go(func() { wg.Wait(); close(done) })
	defer waiter.Wait()

	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
		s.logger.Info("ssh-proxy.drained")
		return
	case <-timer.C:
	}
	s.mu.Lock()
	left := make([]*tracked, 0, len(s.sessions))
	for t := range s.sessions {
		left = append(left, t)
	}
	s.mu.Unlock()
	s.logger.Info("ssh-proxy.drain-timeout", "sessions_closed", len(left))
	// Tell every remaining session, in parallel, for at most two seconds; closing the
	// connections then unblocks any notice stuck on a full window.
	var notes sync.WaitGroup
	for _, t := range left {
		notes.Go(func() { t.notify(DrainMessage) })
	}
	noted := make(chan struct{})
	var nwait sync.WaitGroup
	nwait.Go(func() { notes.Wait(); close(noted) })
	select {
	case <-noted:
	case <-time.After(2 * time.Second):
	}
	cancelSessions()
	nwait.Wait()
	<-done
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, fmt.Sprintf("draining: %d sessions\n", s.Sessions()), http.StatusServiceUnavailable)
		return
	}
	if !s.serving.Load() {
		http.Error(w, "not serving\n", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

// connState is what the auth callbacks learn about one connection.
type connState struct {
	remote   string
	grant    *login.Grant
	preauth  *limits.Conn
	attempts atomic.Int32 // attempts that reached the gate
	failures atomic.Int32
	// clientFault: a refusal blamed on the client (penalised), as opposed to the platform's.
	clientFault atomic.Bool
	// shed: closed to make room for other unauthenticated connections.
	shed atomic.Bool
}

func (s *Server) refused(st *connState, meta ssh.ConnMetadata, method string, err error) error {
	r := login.RefusalOf(err)
	st.failures.Add(1)
	if r.Blame() == login.BlameClient {
		st.clientFault.Store(true)
	}
	s.cfg.Metrics.Auth(method, false)
	s.logger.Info("ssh-proxy.authentication-refused",
		"ssh_user", logging.Cap(meta.User()), "remote_addr", st.remote, "method", method, "reason", r.Message,
		"reason_code", r.Code(), "blame", r.Blame().String(), "error", logging.CapError(err))
	return &ssh.BannerError{Err: err, Message: "ssh-proxy: " + r.Message + "\n"}
}

// granted records a decided login on the connection.
func (s *Server) granted(st *connState, method string, g *login.Grant) *ssh.Permissions {
	s.cfg.Metrics.Auth(method, true)
	st.grant = g
	st.preauth.Done() // authenticated: never shed from here on
	return g.Permissions()
}

func (s *Server) serverConfig(ctx context.Context, st *connState, ic *idleConn) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config:        s.cfg.Algorithms,
		ServerVersion: s.cfg.ServerVersion,
		MaxAuthTries:  s.cfg.MaxAuthTries,
		// Every user-auth request ("none" included) means the key exchange is done.
		AuthLogCallback: func(ssh.ConnMetadata, string, error) { st.preauth.Advance(limits.AuthAttempted) },
		PasswordCallback: func(meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			st.attempts.Add(1)
			st.preauth.Advance(limits.AuthAttempted)
			ic.pause()
			defer ic.resume()
			g, err := s.login.Password(ctx, meta.User(), password)
			if err != nil {
				return nil, s.refused(st, meta, metrics.MethodPassword, err)
			}
			return s.granted(st, metrics.MethodPassword, g), nil
		},
	}
	if s.login.KeysEnabled() {
		cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if err := s.login.OfferKey(meta.User(), key); err != nil {
				return nil, s.refused(st, meta, metrics.MethodPublicKey, err)
			}
			return &ssh.Permissions{}, nil
		}
		cfg.VerifiedPublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			st.attempts.Add(1)
			st.preauth.Advance(limits.AuthAttempted)
			ic.pause()
			defer ic.resume()
			g, err := s.login.PublicKey(ctx, meta.User(), key)
			if err != nil {
				return nil, s.refused(st, meta, metrics.MethodPublicKey, err)
			}
			return s.granted(st, metrics.MethodPublicKey, g), nil
		}
	}
	for _, k := range s.cfg.HostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

// refuse closes a connection before the SSH handshake, counting and logging why.
func (s *Server) refuse(reason, remote string, attrs ...any) {
	s.cfg.Metrics.Refused(reason)
	s.logger.Info("ssh-proxy.connection-refused", append([]any{"reason", reason, "remote_addr", remote}, attrs...)...)
}

func (s *Server) handle(ctx, sessCtx context.Context, nc net.Conn) {
	defer nc.Close()
	transport := transportOf(nc)
	s.cfg.Metrics.ConnOpened()
	s.cfg.Metrics.ConnTransport(transport)
	defer s.cfg.Metrics.ConnClosed()
	if n := s.open.Add(1); s.cfg.MaxConnections > 0 && n > int64(s.cfg.MaxConnections) {
		s.open.Add(-1)
		s.refuse(metrics.RefusedMaxConnections, nc.RemoteAddr().String())
		return
	}
	defer s.open.Add(-1)

	grace := time.Now().Add(s.cfg.HandshakeTimeout)
	_ = nc.SetDeadline(grace)
	st := &connState{remote: nc.RemoteAddr().String()}
	// Every arrival is admitted; over the bound, the least-progressed unauthenticated
	// connection (perhaps this one, later) is closed to make room.
	st.preauth = s.cfg.Preauth.Add(func() {
		st.shed.Store(true)
		nc.Close()
	})
	defer st.preauth.Done()

	// Acknowledge at once during the handshake: OpenSSH's client keeps Nagle on for
	// non-interactive sessions, and each of its back-to-back handshake packets would otherwise
	// wait for the ~40 ms delayed ACK. It sees the TCP connection, so it wraps first.
	// Neither applies to a connection carried by something else (a WebSocket): its bytes are
	// not the TCP stream, and its client address comes from the carrier.
	conn, qa := nc, (*quickack.Conn)(nil)
	if transport == TransportTCP {
		conn, qa = quickack.Wrap(nc)
	}
	if s.cfg.ProxyProtocol != nil && transport == TransportTCP {
		pc, err := s.cfg.ProxyProtocol.Wrap(conn)
		if err != nil {
			reason := metrics.RefusedProxyHeader
			if st.shed.Load() { // closed while waiting for its header
				reason = metrics.RefusedShed
			}
			s.refuse(reason, nc.RemoteAddr().String(), "error", logging.CapError(err))
			return
		}
		conn = pc
	}
	remote := conn.RemoteAddr().String()
	st.remote = remote
	source := proxyproto.AddrOf(conn.RemoteAddr())
	// Penalties need the real client address: behind a load balancer or NAT that hides it,
	// every user shares one address, and penalising it would lock everyone out.
	penalties := s.cfg.Penalties
	if !clientAddressKnown(conn, transport, s.cfg.ClientAddressesPreserved) {
		penalties = nil
	}
	if penalties != nil && penalties.Refused(source) {
		s.refuse(metrics.RefusedPenalty, remote)
		return
	}

	ic := &idleConn{Conn: conn, grace: grace, preauth: s.cfg.PreauthIdleTimeout, progress: st.preauth}
	ic.resume()
	hctx, hcancel := context.WithDeadline(ctx, grace)
	stopH := context.AfterFunc(hctx, ic.interrupt)
	// sshident: a client line that is not an SSH-2.0 identification gets OpenSSH's reason.
	sc, chans, reqs, err := ssh.NewServerConn(sshident.Wrap(ic), s.serverConfig(hctx, st, ic))
	qa.Done()
	handshakeInterrupted := !stopH()
	graceExpired := errors.Is(hctx.Err(), context.DeadlineExceeded) || !time.Now().Before(grace)
	hcancel()
	if err == nil && handshakeInterrupted {
		sc.Close()
		err = errors.New("handshake timed out or server stopping")
	}
	if err != nil {
		if st.grant != nil && st.grant.Backend != nil {
			st.grant.Backend.Close()
		}
		s.handshakeFailed(st, source, penalties, graceExpired, ctx.Err() != nil, err)
		return
	}
	st.preauth.Done()
	ic.established()
	g := login.GrantOf(sc.Permissions)
	if g == nil { // cannot happen: every successful callback returns a grant
		sc.Close()
		return
	}
	sessionID := newSessionID()
	id := audit.Identity{User: g.User, UserID: g.UserID, SSHUser: sc.User(), Scheme: string(g.Scheme), AppGUID: g.AppGUID,
		Index: g.Index, ProcessGUID: g.ProcessGUID, InstanceGUID: g.InstanceGUID, ClientAddr: remote, Transport: transport}
	attrs := []any{
		"user", logging.Cap(g.User), "ssh_user", logging.Cap(sc.User()), "scheme", string(g.Scheme), "app_guid", g.AppGUID, "process_guid", g.ProcessGUID,
		"index", g.Index, "instance_guid", g.InstanceGUID, "remote_addr", remote, "session_id", sessionID, "transport", transport,
	}
	if g.Refusal != nil {
		s.refuseChannels(sessCtx, sc, chans, reqs, g, id, sessionID, attrs)
		if g.Refusal.Blame() == login.BlameClient && penalties != nil {
			penalties.Penalise(source)
		}
		return
	}
	release, d := s.cfg.Limiter.Acquire(g.UserID, g.InstanceGUID)
	if d != nil {
		g.Backend.Close()
		s.cfg.Metrics.PolicyDenied(string(d.Kind))
		s.cfg.Audit.Refused(id, sessionID, string(d.Kind), d.Reason)
		s.logger.Info("ssh-proxy.session-refused", append(attrs, "reason", d.Reason, "reason_code", string(d.Kind))...)
		s.rejectChannels(sessCtx, sc, chans, reqs, d.RejectionReason(), d.Reason)
		return
	}
	defer release()
	backend := g.Backend
	attrs = append(attrs, "backend_tls", backend.TLS)
	s.logger.Info("ssh-proxy.session-started", attrs...)
	if s.cfg.Sessions != nil {
		defer s.cfg.Sessions.SessionStarted(g, remote)()
	}
	as := s.cfg.Audit.Start(id, sessionID)
	start := time.Now()
	tr := newTracked(sc, s.cfg.Metrics, as)
	if s.cfg.Policy != nil {
		tr.policy = &connPolicy{rules: s.cfg.Policy, conn: s.cfg.Policy.NewConn(), rec: s.cfg.Recording, sessionID: sessionID}
	}
	s.cfg.Metrics.SessionStarted()
	s.mu.Lock()
	s.sessions[tr] = struct{}{}
	s.mu.Unlock()

	if err := s.announce.Announce(sc); err != nil {
		s.logger.Debug("ssh-proxy.hostkeys-announce-failed", "remote_addr", remote, "error", err.Error())
	}
	rctx, rcancel := context.WithCancel(sessCtx)
	var endReason atomic.Value
	endReason.Store("connection closed")
	var lwg sync.WaitGroup
	lwg.Go(func() {
		if r := s.liveness(rctx, tr); r != "" {
			endReason.Store(r)
		}
	})
	relay.RelayWith(rctx, tr.clientConn(), tr.channels(chans), reqs, backend, relay.Options{
		HandleClientRequest: func(req *ssh.Request) bool {
			tr.touch() // the client's keepalives count as traffic, as in diego-ssh
			return s.announce.HandleRequest(sc, req) || tr.globalRequest(backend.Conn, req)
		},
		HandleChannelRequest: tr.channelRequest,
	})
	if sessCtx.Err() != nil {
		endReason.Store("drain timeout")
	}
	rcancel()
	lwg.Wait()
	tr.wg.Wait()

	s.mu.Lock()
	delete(s.sessions, tr)
	s.mu.Unlock()
	s.cfg.Metrics.SessionEnded()
	reason := endReason.Load().(string)
	as.Bytes(tr.toBackend.Load(), tr.toClient.Load())
	as.End(sessionID, reason)
	s.logger.Info("ssh-proxy.session-ended", append(attrs, "duration_seconds", time.Since(start).Seconds(),
		"bytes_to_backend", tr.toBackend.Load(), "bytes_to_client", tr.toClient.Load(), "end_reason", reason)...)
}

// clientAddressKnown says whether conn's RemoteAddr is the client's own address (penalties
// apply only then). TCP: a PROXY header announced it, or the network in front of the proxy
// keeps client addresses (preserved). Other transports: only when the connection says its
// address was forwarded by a trusted router (Forwarded() true).
func clientAddressKnown(conn net.Conn, transport string, preserved bool) bool {
	if transport != TransportTCP {
		f, ok := conn.(interface{ Forwarded() bool })
		return ok && f.Forwarded()
	}
	return preserved || proxyproto.ClientAddressKnown(conn)
}

// handshakeFailed classifies a failed handshake for metrics, penalties and the log. Only a
// connection on which the client presented refused credentials is penalised (by penalties, nil
// when the client's address is not known): never one that was shed, stopped, ran out of grace
// time (a person still typing) or never attempted to log in (a health check).
func (s *Server) handshakeFailed(st *connState, source netip.Addr, penalties *limits.Penalties, graceExpired, stopping bool, err error) {
	var reason string
	penalise := false
	switch {
	case stopping:
		reason = metrics.RefusedDraining
	case st.shed.Load():
		reason = metrics.RefusedShed
	case graceExpired:
		reason = metrics.RefusedGraceTime
	case st.failures.Load() > 0:
		reason = metrics.RefusedAuth
		if s.cfg.MaxAuthTries > 0 && int(st.failures.Load()) >= s.cfg.MaxAuthTries {
			reason = metrics.RefusedMaxAuthTries
		}
		penalise = st.clientFault.Load()
	}
	if reason != "" {
		s.cfg.Metrics.Refused(reason)
	}
	if penalise && penalties != nil {
		penalties.Penalise(source)
	}
	s.logger.Debug("ssh-proxy.handshake-failed", "remote_addr", st.remote, "reason", reason, "error", logging.CapError(err))
}

// refuseChannels serves a connection whose user was permitted but whose instance cannot be
// reached: every channel open is rejected with the grant's one-line reason, every global
// request refused, and the connection closed RefusalCloseDelay after the first rejection (or
// after RefusalLinger). It is recorded as a refusal (log, metrics, audit), never as a session.
func (s *Server) refuseChannels(ctx context.Context, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request,
	g *login.Grant, id audit.Identity, sessionID string, attrs []any) {
	r := g.Refusal
	s.cfg.Metrics.Refused(metrics.RefusedInstance)
	s.cfg.Audit.Refused(id, sessionID, r.Code(), r.Message)
	s.logger.Info("ssh-proxy.session-refused", append(attrs, "reason", r.Message, "reason_code", r.Code(),
		"blame", r.Blame().String(), "error", logging.CapError(r))...)
	s.rejectChannels(ctx, sc, chans, reqs, ssh.ConnectionFailed, r.Message)
}

// rejectChannels rejects every channel open on an accepted connection with one reason,
// refuses every global request, and closes the connection RefusalCloseDelay after the first
// rejection (or after RefusalLinger).
func (s *Server) rejectChannels(ctx context.Context, sc *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request,
	reason ssh.RejectionReason, message string) {
	linger := time.NewTimer(RefusalLinger)
	defer linger.Stop()
	var closing <-chan time.Time
	done := ctx.Done()
	for chans != nil || reqs != nil {
		select {
		case nc, ok := <-chans:
			if !ok {
				chans = nil
				continue
			}
			_ = nc.Reject(reason, message)
			if closing == nil {
				closing = time.After(RefusalCloseDelay)
			}
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		case <-closing:
			sc.Close()
			closing = nil
		case <-linger.C:
			sc.Close()
		case <-done:
			sc.Close()
			done = nil
		}
	}
	_ = sc.Wait()
}

// liveness runs the keepalive, the session idle timeout and the maximum connection duration for
// one session until ctx ends (internal/liveness). It returns why it closed the connection ("" if
// it did not).
func (s *Server) liveness(ctx context.Context, tr *tracked) string {
	settings := liveness.Settings{IdleTimeout: s.cfg.IdleTimeout, KeepaliveInterval: s.cfg.KeepaliveInterval,
		KeepaliveCountMax: s.cfg.KeepaliveCountMax, MaxDuration: s.cfg.MaxConnectionDuration}
	return string(liveness.Watch(ctx, settings, tr.conn, tr.activity, func(r liveness.Reason) {
		switch r {
		case liveness.MaxDuration:
			tr.notifyBriefly(MaxDurationMessage)
		case liveness.IdleTimeout:
			tr.notifyBriefly(IdleMessage)
		}
		tr.conn.Close()
	}))
}

// notifyBriefly is notify bounded to one second (a client not reading cannot hold it up; the
// caller closes the connection next, which ends a write still blocked).
func (t *tracked) notifyBriefly(msg string) {
	done := make(chan struct{})
	var w sync.WaitGroup
	w.Go(func() { t.notify(msg); close(done) })
	select {
	case <-done:
	case <-time.After(time.Second):
		t.conn.Close()
	}
	w.Wait()
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// idleConn enforces the login grace time and the pre-auth idle timeout with connection
// deadlines: before authentication every read and write pushes the deadline to
// min(now+preauth, grace); while the proxy itself works on an authentication (pause) the
// deadline is the grace time; once established it has no deadline at all (the session idle
// timeout is activity based, see liveness).
type idleConn struct {
	net.Conn
	grace   time.Time
	preauth time.Duration
	// progress learns how far the client has got (identification line, first packet); only
	// the handshake's reader goroutine touches scan.
	progress *limits.Conn
	scan     progressScanner

	settled atomic.Bool // fast path once established: no locking per read or write

	mu          sync.Mutex
	paused      bool
	done        bool // established or interrupted: deadlines no longer move
	interrupted bool
}

func (c *idleConn) touchLocked() {
	if c.done || c.paused {
		return
	}
	d := c.grace
	if c.preauth > 0 {
		if p := time.Now().Add(c.preauth); p.Before(d) {
			d = p
		}
	}
	_ = c.Conn.SetDeadline(d)
}

func (c *idleConn) touch() {
	if c.settled.Load() {
		return
	}
	c.mu.Lock()
	c.touchLocked()
	c.mu.Unlock()
}

func (c *idleConn) pause() {
	c.mu.Lock()
	c.paused = true
	if !c.done {
		_ = c.Conn.SetDeadline(c.grace)
	}
	c.mu.Unlock()
}

func (c *idleConn) resume() {
	c.mu.Lock()
	c.paused = false
	c.touchLocked()
	c.mu.Unlock()
}

// interrupt ends the handshake now (grace time over or server stopping).
func (c *idleConn) interrupt() {
	c.mu.Lock()
	c.done, c.interrupted = true, true
	_ = c.Conn.SetDeadline(time.Unix(1, 0))
	c.mu.Unlock()
}

func (c *idleConn) established() {
	c.mu.Lock()
	if !c.interrupted {
		c.done = true
		_ = c.Conn.SetDeadline(time.Time{})
		c.settled.Store(true)
	}
	c.mu.Unlock()
}

func (c *idleConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.settled.Load() {
		if stage, ok := c.scan.feed(b[:n]); ok {
			c.progress.Advance(stage)
		}
		c.touch()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.touch()
	return c.Conn.Write(b)
}
