// Package metrics is the ssh-proxy's Prometheus instrumentation, on its own registry and its
// own listener. No metric carries a per-client or per-user label: label values come from
// small fixed sets only.
package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Refusal reasons (label values of ssh_proxy_refusals_total).
const (
	RefusedMaxConnections = "max_connections"
	RefusedShed           = "unauthenticated_shed"
	RefusedPenalty        = "penalty"
	RefusedProxyHeader    = "proxy_header"
	RefusedGraceTime      = "login_grace_time"
	RefusedAuth           = "authentication"
	RefusedMaxAuthTries   = "max_auth_tries"
	RefusedDraining       = "draining"
	// RefusedInstance: the user was permitted but the instance could not be reached (each
	// channel open was rejected with the reason).
	RefusedInstance = "instance"
)

// Auth methods and results (label values of ssh_proxy_auth_attempts_total).
const (
	MethodPassword  = "password"
	MethodPublicKey = "publickey"
	ResultSuccess   = "success"
	ResultFailure   = "failure"
)

// channelTypes are the channel types counted by name; any other is "other".
var channelTypes = map[string]bool{
	"session": true, "direct-tcpip": true, "forwarded-tcpip": true,
	"direct-streamlocal@openssh.com": true, "forwarded-streamlocal@openssh.com": true, "x11": true,
	"auth-agent@openssh.com": true,
}

// Metrics holds every ssh-proxy metric. A nil *Metrics records nothing.
type Metrics struct {
	Registry *prometheus.Registry

	connsCurrent prometheus.Gauge
	connsTotal   prometheus.Counter
	authAttempts *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	dialSeconds  *prometheus.HistogramVec
	bytes        *prometheus.CounterVec
	channels     *prometheus.CounterVec
	sessions     prometheus.Gauge
	draining     prometheus.Gauge

	loggregatorDropped      prometheus.Counter
	loggregatorSendFailures prometheus.Counter

	connsByTransport *prometheus.CounterVec
	policy           policyMetrics // policy.go
}

// Transports (label values of ssh_proxy_transport_connections_total).
const (
	TransportTCP       = "tcp"
	TransportWebSocket = "websocket"
)

// New registers the metrics on a fresh registry.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.connsCurrent = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ssh_proxy_connections_current",
		Help: "TCP connections open now (before and after authentication)."})
	m.connsTotal = prometheus.NewCounter(prometheus.CounterOpts{Name: "ssh_proxy_connections_total",
		Help: "TCP connections accepted."})
	m.authAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_auth_attempts_total",
		Help: "Authentication attempts that reached the proxy's checks, by method and result."}, []string{"method", "result"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_refusals_total",
		Help: "Connections refused or closed before a session started, by reason."}, []string{"reason"})
	m.dialSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ssh_proxy_backend_dial_duration_seconds",
		Help:    "Time to resolve and connect to the instance's sshd (including its SSH handshake), by result.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"result"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_bytes_relayed_total",
		Help: "Channel data bytes relayed, by direction (to_backend, to_client)."}, []string{"direction"})
	m.channels = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_channels_total",
		Help: "Channels relayed, by channel type."}, []string{"channel_type"})
	m.sessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ssh_proxy_sessions_current",
		Help: "Authenticated connections being relayed now."})
	m.draining = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ssh_proxy_draining",
		Help: "1 while the proxy drains (stopped accepting, waiting for sessions to end), else 0."})
	m.loggregatorDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "ssh_proxy_loggregator_envelopes_dropped_total",
		Help: "App log lines and gauges not handed to the Loggregator client because its buffer was full (Loggregator slow or down)."})
	m.loggregatorSendFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "ssh_proxy_loggregator_send_failures_total",
		Help: "Batches of envelopes the Loggregator client failed to send to the local agent (each batch is lost)."})
	m.connsByTransport = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_transport_connections_total",
		Help: "Connections accepted, by transport (tcp: the SSH listener; websocket: the SSH-over-WebSocket listener)."}, []string{"transport"})
	m.Registry.MustRegister(m.connsByTransport)
	for _, t := range []string{TransportTCP, TransportWebSocket} {
		m.connsByTransport.WithLabelValues(t)
	}
	m.Registry.MustRegister(m.connsCurrent, m.connsTotal, m.authAttempts, m.refusals, m.dialSeconds,
		m.bytes, m.channels, m.sessions, m.draining, m.loggregatorDropped, m.loggregatorSendFailures)
	for _, r := range []string{RefusedMaxConnections, RefusedShed, RefusedPenalty, RefusedProxyHeader,
		RefusedGraceTime, RefusedAuth, RefusedMaxAuthTries, RefusedDraining} {
		m.refusals.WithLabelValues(r)
	}
	for _, meth := range []string{MethodPassword, MethodPublicKey} {
		m.authAttempts.WithLabelValues(meth, ResultSuccess)
		m.authAttempts.WithLabelValues(meth, ResultFailure)
	}
	m.bytes.WithLabelValues("to_backend")
	m.bytes.WithLabelValues("to_client")
	m.registerPolicy()
	return m
}

// ConnOpened counts an accepted connection; ConnClosed ends it.
func (m *Metrics) ConnOpened() {
	if m != nil {
		m.connsTotal.Inc()
		m.connsCurrent.Inc()
	}
}

// ConnTransport counts an accepted connection by its transport; anything but the known ones
// is counted as "other" (label values stay a fixed set).
func (m *Metrics) ConnTransport(t string) {
	if m == nil {
		return
	}
	if t != TransportTCP && t != TransportWebSocket {
		t = "other"
	}
	m.connsByTransport.WithLabelValues(t).Inc()
}

// ConnClosed ends a connection counted by ConnOpened.
func (m *Metrics) ConnClosed() {
	if m != nil {
		m.connsCurrent.Dec()
	}
}

// Auth counts one authentication attempt.
func (m *Metrics) Auth(method string, ok bool) {
	if m == nil {
		return
	}
	res := ResultFailure
	if ok {
		res = ResultSuccess
	}
	m.authAttempts.WithLabelValues(method, res).Inc()
}

// Refused counts a refusal (reason is one of the Refused* constants).
func (m *Metrics) Refused(reason string) {
	if m != nil {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// Dial observes one backend resolve-and-connect.
func (m *Metrics) Dial(d time.Duration, err error) {
	if m == nil {
		return
	}
	res := "success"
	if err != nil {
		res = "failure"
	}
	m.dialSeconds.WithLabelValues(res).Observe(d.Seconds())
}

// Bytes adds relayed channel data.
func (m *Metrics) Bytes(toBackend, toClient int64) {
	if m == nil {
		return
	}
	m.bytes.WithLabelValues("to_backend").Add(float64(toBackend))
	m.bytes.WithLabelValues("to_client").Add(float64(toClient))
}

// Channel counts a relayed channel of type t.
func (m *Metrics) Channel(t string) {
	if m == nil {
		return
	}
	if !channelTypes[t] {
		t = "other"
	}
	m.channels.WithLabelValues(t).Inc()
}

// SessionStarted and SessionEnded track authenticated connections being relayed.
func (m *Metrics) SessionStarted() {
	if m != nil {
		m.sessions.Inc()
	}
}

// SessionEnded ends a session counted by SessionStarted.
func (m *Metrics) SessionEnded() {
	if m != nil {
		m.sessions.Dec()
	}
}

// SetDraining sets the drain gauge.
func (m *Metrics) SetDraining(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.draining.Set(v)
}

// LoggregatorDropped counts envelopes dropped because the Loggregator buffer was full.
func (m *Metrics) LoggregatorDropped() {
	if m != nil {
		m.loggregatorDropped.Inc()
	}
}

// LoggregatorSendFailed counts one batch the Loggregator client failed to send.
func (m *Metrics) LoggregatorSendFailed() {
	if m != nil {
		m.loggregatorSendFailures.Inc()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

// Endpoint is a listening metrics HTTP(S) server.
type Endpoint struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

// Listen opens address and serves GET /metrics (TLS when tlsCfg is not nil) until Close.
func Listen(address string, tlsCfg *tls.Config, m *Metrics) (*Endpoint, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("metrics.address: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	e := &Endpoint{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 20 * time.Second, IdleTimeout: 60 * time.Second}}
	e.wg.Go(func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = ln.Close()
		}
	})
	return e, nil
}

// Addr is the endpoint's address.
func (e *Endpoint) Addr() net.Addr { return e.ln.Addr() }

// Close stops serving (waiting up to 5s for scrapes in flight) and returns once the server
// goroutine has ended.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if err != nil {
		_ = e.srv.Close()
	}
	e.wg.Wait()
	return err
}
