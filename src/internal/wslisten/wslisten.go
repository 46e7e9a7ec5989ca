// Package wslisten accepts SSH connections carried over WebSocket (Cloud Foundry RFC-0029,
// "CF SSH over WebSockets"): an HTTPS server whose upgraded connections come out of Accept as
// net.Conn values, so an SSH server serves them exactly as it serves TCP connections.
//
// Each binary WebSocket message carries a piece of the raw SSH byte stream, in both directions.
// Everything before the hand-over (TLS handshake, HTTP request, upgrade, waiting for Accept) is
// bounded in time by Config.HandshakeTimeout and in number by Config.MaxHandshakes; what comes
// after (SSH handshake, login grace time, pre-auth limits) is the SSH server's business.
package wslisten

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// Defaults for the zero values of Config.
const (
	// DefaultPath is where RFC-0029 clients connect: the advertised href is "wss://ssh.<domain>".
	DefaultPath             = "/"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxHandshakes    = 128
	DefaultMaxMessageBytes  = 256 << 10
)

// maxHeaderBytes caps the HTTP request head; an upgrade needs a few hundred bytes.
const maxHeaderBytes = 16 << 10

// evictionLogInterval spaces the log lines about handshakes evicted over MaxHandshakes.
const evictionLogInterval = 10 * time.Second

// closeGrace is how long Conn.Close waits for the client's answer to its close frame.
const closeGrace = time.Second

// maxForwardedEntries caps how many X-Forwarded-For entries are looked at.
const maxForwardedEntries = 32

// Transport is what Conn.Transport reports, for metrics labels and audit records.
const Transport = "websocket"

// Config says where and how to listen. TLS, or CertFile and KeyFile, are required.
type Config struct {
	Addr              string // host:port to listen on
	CertFile, KeyFile string // PEM server certificate (chain) and key
	// TLS, when set, supplies the certificate already loaded (CertFile and KeyFile are then
	// ignored); only its Certificates are used.
	TLS *tls.Config
	// Path is the only request path upgraded; DefaultPath when empty.
	Path string
	// TrustedRouters lists the networks whose requests may name the client in X-Forwarded-For.
	TrustedRouters []netip.Prefix
	// HandshakeTimeout bounds everything from the TCP accept to the hand-over to Accept:
	// TLS handshake, request headers, upgrade, and waiting for Accept to be called.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the connections in that phase at once; when full, the oldest is
	// closed to make room for a new one.
	MaxHandshakes int
	// MaxMessageBytes bounds one WebSocket message; a larger one closes the connection (1009).
	MaxMessageBytes int64
	Logger          *slog.Logger
}

// Listener is a net.Listener of SSH-over-WebSocket connections. Close stops the HTTPS server,
// closes every connection not yet returned by Accept and waits for its own goroutines.
type Listener struct {
	cfg    Config
	logger *slog.Logger
	tcp    net.Listener
	srv    *http.Server
	ready  chan *Conn
	done   chan struct{}
	// served is closed when the HTTPS server stops, serveErr then says why.
	served   chan struct{}
	serveErr error

	mu      sync.Mutex
	closed  bool
	pending map[*pendingConn]struct{}
	wg      sync.WaitGroup // the Serve goroutine and every running handler

	evicted         int       // handshakes evicted over MaxHandshakes since the last log line
	lastEvictionLog time.Time // when that line was written

	closeOnce sync.Once
}

// Listen loads the certificate, binds cfg.Addr and starts serving.
func Listen(cfg Config) (*Listener, error) {
	var certs []tls.Certificate
	switch {
	case cfg.TLS != nil && len(cfg.TLS.Certificates) > 0:
		certs = cfg.TLS.Certificates
	case cfg.CertFile == "" || cfg.KeyFile == "":
		return nil, errors.New("wslisten: a certificate and key are required")
	default:
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading WebSocket listener certificate %s: %w", cfg.CertFile, err)
		}
		certs = []tls.Certificate{cert}
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening for WebSocket on %s: %w", cfg.Addr, err)
	}
	l := &Listener{
		cfg:     cfg,
		logger:  logger,
		tcp:     tcp,
		ready:   make(chan *Conn),
		done:    make(chan struct{}),
		served:  make(chan struct{}),
		pending: make(map[*pendingConn]struct{}),
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: cfg.HandshakeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		ConnContext:       connContext,
	}
	// Every request is an upgrade or an error: nothing to keep alive.
	l.srv.SetKeepAlivesEnabled(false)
	tlsConf := &tls.Config{
		Certificates: certs,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // RFC 6455 upgrades are HTTP/1.1
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.serveErr = l.srv.Serve(tls.NewListener(gate{l}, tlsConf))
		close(l.served)
	}()
	return l, nil
}

// Addr is the bound TCP address.
func (l *Listener) Addr() net.Addr { return l.tcp.Addr() }

// Transport names the carrier of the listener's connections, as Conn.Transport does.
func (l *Listener) Transport() string { return Transport }

// Accept returns the next upgraded connection; net.ErrClosed once Close was called, or the
// HTTPS server's error should it stop on its own.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		select {
		case c := <-l.ready:
			if !l.claim(c.pending) {
				_ = c.closeNow() // its handshake time ran out as it was handed over
				continue
			}
			return c, nil
		case <-l.done:
			return nil, net.ErrClosed
		case <-l.served:
			select {
			case <-l.done:
				return nil, net.ErrClosed
			default:
			}
			return nil, fmt.Errorf("websocket listener stopped: %w", l.serveErr)
		}
	}
}

// Close stops accepting, closes every connection not yet returned by Accept (connections
// already returned are their owner's) and waits for the listener's goroutines.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.done)
		pending := make([]*pendingConn, 0, len(l.pending))
		for p := range l.pending {
			pending = append(pending, p)
		}
		l.mu.Unlock()
		_ = l.tcp.Close()
		_ = l.srv.Close()
		for _, p := range pending {
			p.expire()
		}
	})
	l.wg.Wait()
	return nil
}

// ServeHTTP upgrades requests for the configured path and hands the connection to Accept.
func (l *Listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !l.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.wg.Done()
	p, _ := r.Context().Value(pendingKey{}).(*pendingConn)
	if p == nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if r.URL.Path != l.cfg.Path {
		l.refuse(w, r, http.StatusNotFound, fmt.Sprintf("no SSH WebSocket endpoint at this path; connect to %s", l.cfg.Path))
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		l.refuse(w, r, http.StatusMethodNotAllowed, "SSH over WebSocket needs a GET upgrade request")
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		l.refuse(w, r, http.StatusUpgradeRequired, "this endpoint carries SSH over WebSocket (Cloud Foundry RFC-0029); connect with a WebSocket client such as app-ssh-ws")
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil { // Accept has answered the request
		l.logger.Debug("websocket upgrade refused", "peer", r.RemoteAddr, "error", logging.CapError(err))
		return
	}
	peer := p.RemoteAddr()
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	ws.SetReadLimit(l.cfg.MaxMessageBytes) // NetConn lifts the limit; put ours back
	c := &Conn{Conn: nc, ws: ws, pending: p, peer: peer}
	c.remote, c.forwarded = l.clientAddr(peer, r.Header)
	select {
	case l.ready <- c:
	case <-p.expired:
		_ = c.closeNow()
	case <-l.done:
		_ = ws.Close(websocket.StatusGoingAway, "server shutting down")
	}
}

func (l *Listener) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	l.logger.Debug("websocket request refused", "peer", r.RemoteAddr, "status", code,
		"method", logging.Cap(r.Method), "path", logging.Cap(r.URL.Path))
	http.Error(w, msg, code)
}

// enter registers a running handler unless the listener is closed.
func (l *Listener) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

// claim ends p's handshake phase: its timer stops and it no longer counts against
// MaxHandshakes. False when the timer (or Close) got there first.
func (l *Listener) claim(p *pendingConn) bool {
	l.mu.Lock()
	_, ok := l.pending[p]
	delete(l.pending, p)
	l.mu.Unlock()
	if !ok {
		return false
	}
	p.timer.Stop()
	// net/http may have left read or write deadlines on the hijacked connection.
	_ = p.SetDeadline(time.Time{})
	return true
}

// clientAddr is the peer, or the client X-Forwarded-For names when the peer is a trusted router.
// It walks the list from the right (entries appended by the routers nearest to us), skipping
// trusted routers, and takes the first other address; any unparsable entry means the peer.
func (l *Listener) clientAddr(peer net.Addr, h http.Header) (net.Addr, bool) {
	ap, err := netip.ParseAddrPort(peer.String())
	if err != nil || !l.trusted(ap.Addr().Unmap()) {
		return peer, false
	}
	var entries []string
	for _, v := range h.Values("X-Forwarded-For") {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) > maxForwardedEntries {
		entries = entries[len(entries)-maxForwardedEntries:]
	}
	for i := len(entries) - 1; i >= 0; i-- {
		ip, ok := parseForwarded(entries[i])
		if !ok {
			return peer, false
		}
		if i > 0 && l.trusted(ip) {
			continue
		}
		return &net.TCPAddr{IP: ip.AsSlice()}, true
	}
	return peer, false
}

func (l *Listener) trusted(ip netip.Addr) bool {
	for _, p := range l.cfg.TrustedRouters {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseForwarded reads one X-Forwarded-For entry: an address, optionally with a port.
func parseForwarded(s string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Conn is one SSH connection carried by a WebSocket. RemoteAddr is the client: the TCP peer,
// or the address a trusted router put in X-Forwarded-For.
type Conn struct {
	net.Conn
	ws        *websocket.Conn
	pending   *pendingConn
	peer      net.Addr
	remote    net.Addr
	forwarded bool
}

// RemoteAddr is the client's address (port 0 when it came from X-Forwarded-For).
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Peer is the TCP peer: the router when the request came through one.
func (c *Conn) Peer() net.Addr { return c.peer }

// Forwarded reports whether RemoteAddr came from a trusted router's X-Forwarded-For.
func (c *Conn) Forwarded() bool { return c.forwarded }

// Transport names the carrier, for metrics labels and audit records.
func (c *Conn) Transport() string { return Transport }

// Close sends a normal close frame so the client sees a clean end, gives the client closeGrace
// to answer it, and closes the TCP connection (RFC 6455 7.1.1: the server closes it first).
func (c *Conn) Close() error {
	force := time.AfterFunc(closeGrace, func() { _ = c.pending.Close() })
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	force.Stop()
	_ = c.Conn.Close()
	return c.pending.Close()
}

func (c *Conn) closeNow() error {
	err := c.ws.CloseNow()
	_ = c.Conn.Close()
	return err
}

// pendingConn is a TCP connection in its handshake phase: counted, and closed when its
// timer fires before the hand-over.
type pendingConn struct {
	net.Conn
	l        *Listener
	timer    *time.Timer
	started  time.Time
	expired  chan struct{}
	once     sync.Once
	closeErr error
}

// expire ends p's handshake phase by closing it, unless it was handed over already.
func (p *pendingConn) expire() {
	p.l.mu.Lock()
	_, ok := p.l.pending[p]
	delete(p.l.pending, p)
	p.l.mu.Unlock()
	if !ok {
		return
	}
	p.timer.Stop()
	close(p.expired)
	_ = p.Close()
}

func (p *pendingConn) Close() error {
	p.once.Do(func() {
		p.l.mu.Lock()
		delete(p.l.pending, p)
		p.l.mu.Unlock()
		p.timer.Stop()
		p.closeErr = p.Conn.Close()
	})
	return p.closeErr
}

// gate is the TCP side of the HTTPS server: it counts and times connections in their
// handshake phase and, beyond MaxHandshakes, closes the oldest of them.
type gate struct{ l *Listener }

func (g gate) Accept() (net.Conn, error) {
	l := g.l
	for {
		c, err := l.tcp.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			_ = c.Close()
			return nil, net.ErrClosed
		}
		var evict *pendingConn
		if len(l.pending) >= l.cfg.MaxHandshakes {
			// Full: the oldest handshake goes, not the newcomer. A client completes its
			// handshake in a few round trips, so a flood has to outpace that to shut it out,
			// where refusing newcomers would let a few stalled connections do it.
			for q := range l.pending {
				if evict == nil || q.started.Before(evict.started) {
					evict = q
				}
			}
			l.evicted++
		}
		logNow := evict != nil && time.Since(l.lastEvictionLog) >= evictionLogInterval
		evicted := l.evicted
		if logNow {
			l.lastEvictionLog, l.evicted = time.Now(), 0
		}
		p := &pendingConn{Conn: c, l: l, expired: make(chan struct{}), started: time.Now()}
		l.pending[p] = struct{}{}
		p.timer = time.AfterFunc(l.cfg.HandshakeTimeout, p.expire)
		l.mu.Unlock()
		if evict != nil {
			evict.expire()
			if logNow { // at most one line per interval, however hard the flood
				l.logger.Warn("websocket handshakes evicted: too many in progress, the oldest are closed",
					"peer", evict.RemoteAddr().String(), "max_handshakes", l.cfg.MaxHandshakes, "evicted", evicted)
			}
		}
		return p, nil
	}
}

func (g gate) Close() error   { return g.l.tcp.Close() }
func (g gate) Addr() net.Addr { return g.l.tcp.Addr() }

type pendingKey struct{}

// connContext lets the handler find the pendingConn under the TLS layer.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if p, ok := c.(*pendingConn); ok {
		return context.WithValue(ctx, pendingKey{}, p)
	}
	return ctx
}
