// Package server runs an SSH listener whose connections are admitted by a Gate (which
// authenticates and connects the backend) and then relayed. Around each connection it enforces
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
	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/hostkeys"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/liveness"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/proxyproto"
	"github.com/app-ssh/app-ssh/internal/quickack"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/sshident"
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
	// Address is the SSH listen address.
	Address string
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
	// the app's log lines and the ssh-connections gauge).
	Sessions SessionObserver
	// ServerVersion is the SSH identification string (default "SSH-2.0-app-ssh-proxy").
	ServerVersion string
	Logger        *slog.Logger
}

// SessionObserver is told when a session to an instance starts, with the permissions the
// login granted and the client's address; the func it returns is called when the session
// ends. It must not block.
type SessionObserver interface {
	SessionStarted(perms *ssh.Permissions, clientAddr string) (ended func())
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
	draining atomic.Bool
	started  atomic.Bool
	open     atomic.Int64

	mu       sync.Mutex
	sessions map[*tracked]struct{}
}

// New listens on cfg.Address (and cfg.HealthAddress) right away, so Addr is known before Serve.
func New(cfg Config, gate Gate) (*Server, error) {
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
	if g, ok := gate.(*ProxyGate); ok && g.Metrics == nil {
		g.Metrics = cfg.Metrics
	}
	ln, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	s := &Server{cfg: cfg, gate: gate, logger: logger, ln: ln, announce: hostkeys.New(cfg.HostKeys, cfg.NextHostKeys),
		sessions: map[*tracked]struct{}{}}
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
	stop := context.AfterFunc(acceptCtx, func() {
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
			if acceptCtx.Err() == nil {
				var ne net.Error
				if errors.As(aerr, &ne) && ne.Timeout() {
					continue
				}
				err = aerr
				cancelAccept()
			}
			break
		}
		wg.Go(func() { s.handle(acceptCtx, sessCtx, c) })
	}
	s.serving.Store(false)
	s.ln.Close()
	s.drain(&wg, cancelSessions)
	return err
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
	backend  *relay.Backend
	preauth  *limits.Conn
	attempts atomic.Int32 // attempts that reached the gate
	failures atomic.Int32
	// credentialFailure: a failure that says the client's credentials were wrong (penalised),
	// as opposed to a platform problem (UAA/CC/BBS/backend unavailable).
	credentialFailure atomic.Bool
	// shed: closed to make room for other unauthenticated connections.
	shed atomic.Bool
}

func (s *Server) refused(st *connState, meta ssh.ConnMetadata, method string, err error) error {
	reason := auth.ReasonOf(err)
	st.failures.Add(1)
	if penalisable(reason) {
		st.credentialFailure.Store(true)
	}
	s.cfg.Metrics.Auth(method, false)
	s.logger.Info("ssh-proxy.authentication-refused",
		"ssh_user", logging.Cap(meta.User()), "remote_addr", st.remote, "method", method, "reason", reason, "error", logging.CapError(err))
	return &ssh.BannerError{Err: err, Message: "ssh-proxy: " + reason + "\n"}
}

// penalisable reports whether a refusal reason says the client presented something wrong:
// a bad user name, one-time code or shared secret, a user the Cloud Controller does not permit,
// an app guid it does not know, an app with SSH off, a process guid the BBS does not know, a
// static target or key that names nothing the user may reach. Only those are penalised per
// source. Everything else, including any reason not listed here, is the platform's business
// (UAA, CC or the BBS down, CC rejecting a token UAA just issued or a CC URL that does not serve
// the ssh_access check, no scheme enabled, anything past authorisation) and is never penalised:
// an outage or a misconfiguration must not lock users out.
func penalisable(reason string) bool {
	switch reason {
	case auth.ReasonBadUsername, auth.ReasonSchemeDisabled, auth.ReasonInvalidCode, auth.ReasonInvalidCredential,
		auth.ReasonNotPermitted, auth.ReasonNoSuchApp, auth.ReasonSSHDisabled, auth.ReasonAppNotFound,
		auth.ReasonUnknownTarget, auth.ReasonKeyNotAuthorized:
		return true
	}
	return false
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
			perms, backend, err := s.gate.Admit(ctx, meta, password)
			if err != nil {
				return nil, s.refused(st, meta, metrics.MethodPassword, err)
			}
			s.cfg.Metrics.Auth(metrics.MethodPassword, true)
			st.backend = backend
			st.preauth.Done() // authenticated: never shed from here on
			return perms, nil
		},
	}
	if kg, ok := s.gate.(KeyGate); ok && kg.KeysEnabled() {
		cfg.PublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			return kg.OfferKey(meta, key)
		}
		cfg.VerifiedPublicKeyCallback = func(meta ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			st.attempts.Add(1)
			st.preauth.Advance(limits.AuthAttempted)
			ic.pause()
			defer ic.resume()
			perms, backend, err := kg.AdmitKey(ctx, meta, key)
			if err != nil {
				return nil, s.refused(st, meta, metrics.MethodPublicKey, err)
			}
			s.cfg.Metrics.Auth(metrics.MethodPublicKey, true)
			st.backend = backend
			st.preauth.Done()
			return perms, nil
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
	s.cfg.Metrics.ConnOpened()
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
	conn, qa := quickack.Wrap(nc)
	if s.cfg.ProxyProtocol != nil {
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
	if !s.cfg.ClientAddressesPreserved && !proxyproto.ClientAddressKnown(conn) {
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
		if st.backend != nil {
			st.backend.Close()
		}
		s.handshakeFailed(st, source, penalties, graceExpired, ctx.Err() != nil, err)
		return
	}
	st.preauth.Done()
	ic.established()
	backend := st.backend

	t, _ := auth.TargetOf(sc.Permissions)
	instance := sc.Permissions.Extensions[ExtInstanceGUID]
	attrs := []any{
		"user", logging.Cap(t.User), "ssh_user", logging.Cap(sc.User()), "scheme", string(t.Scheme), "app_guid", t.AppGUID, "process_guid", t.ProcessGUID,
		"index", t.Index, "instance_guid", instance, "remote_addr", remote, "backend_tls", backend.TLS,
	}
	sessionID := newSessionID()
	attrs = append(attrs, "session_id", sessionID)
	s.logger.Info("ssh-proxy.session-started", attrs...)
	if s.cfg.Sessions != nil {
		defer s.cfg.Sessions.SessionStarted(sc.Permissions, remote)()
	}
	as := s.cfg.Audit.Start(audit.Identity{User: t.User, SSHUser: sc.User(), Scheme: string(t.Scheme), AppGUID: t.AppGUID,
		Index: t.Index, ProcessGUID: t.ProcessGUID, InstanceGUID: instance, ClientAddr: remote}, sessionID)
	start := time.Now()
	tr := newTracked(sc, s.cfg.Metrics, as)
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
			return s.announce.HandleRequest(sc, req)
		},
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
		penalise = st.credentialFailure.Load()
	}
	if reason != "" {
		s.cfg.Metrics.Refused(reason)
	}
	if penalise && penalties != nil {
		penalties.Penalise(source)
	}
	s.logger.Debug("ssh-proxy.handshake-failed", "remote_addr", st.remote, "reason", reason, "error", logging.CapError(err))
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
