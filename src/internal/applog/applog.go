// Package applog writes what the ssh-proxy tells Loggregator: two lines into the app's own log
// stream for every session that reached an instance ("Successful remote access by <addr>" and
// "Remote access ended for <addr>", what `cf logs` shows as [SSH/<index>]), and the
// ssh-connections gauge on the firehose. It sends through go-loggregator's v2 ingress client
// to the local Loggregator agent over mutual TLS.
//
// Nothing here waits on Loggregator. Events go into a bounded queue that one goroutine feeds
// to the client; when the agent is slow or down and the queue is full, events are dropped and
// counted (metrics, and one log line per report interval, never one per event).
package applog

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	loggregator "code.cloudfoundry.org/go-loggregator/v10"
	"code.cloudfoundry.org/go-loggregator/v10/rpc/loggregator_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/metrics"
)

// What the envelopes carry, as diego-ssh's ssh-proxy sends them.
const (
	// SourceType is the log envelope's source_type tag (`cf logs` shows [SSH/<index>]).
	SourceType = "SSH"
	// GaugeName is the firehose gauge of connections relayed now.
	GaugeName = "ssh-connections"
	// GaugeUnit is the unit diego-logging-client gives plain counts.
	GaugeUnit = "Metric"
	// Origin is the origin tag on every envelope (the job's name, as Diego components set it).
	Origin = "ssh_proxy"
)

// Accessed is the line written when a session to an instance starts; Ended when it ends.
func Accessed(clientAddr string) string { return "Successful remote access by " + clientAddr }

// Ended is the line written when a session ends.
func Ended(clientAddr string) string { return "Remote access ended for " + clientAddr }

// Config describes the emitter.
type Config struct {
	// Address is the agent's v2 ingress, host:port (localhost:3458 on a BOSH VM).
	Address string
	// TLS is the client's mutual TLS config; ServerName must be what the agent's certificate
	// names ("metron" in cf-deployment).
	TLS *tls.Config
	// SourceID and InstanceID identify the proxy on its gauge envelopes.
	SourceID, InstanceID string
	// GaugeInterval re-sends the gauge this often even when it did not change (default 15s).
	GaugeInterval time.Duration
	// QueueSize bounds the events waiting for the client (default 1024).
	QueueSize int
	// ReportInterval is the most often a drop or send failure is logged (default 10s).
	ReportInterval time.Duration
	Metrics        *metrics.Metrics
	Logger         *slog.Logger
}

// Emitter sends app log lines and the connections gauge. Its methods are safe for concurrent
// use and never block on Loggregator. A nil *Emitter does nothing.
type Emitter struct {
	cfg    Config
	client *loggregator.IngressClient
	cancel context.CancelFunc

	queue   chan *loggregator_v2.Envelope
	changed chan struct{}
	stop    chan struct{}
	fwd     sync.WaitGroup // the forwarder
	loops   sync.WaitGroup // gauge and reporter
	once    sync.Once

	conns        atomic.Int64
	dropped      atomic.Uint64 // since the last report
	sendFailures atomic.Uint64 // since the last report
	lastFailure  atomic.Value  // string
}

// New starts an emitter. The gRPC connection is made lazily: an agent that is not up yet
// is not an error.
func New(cfg Config) (*Emitter, error) {
	if cfg.TLS == nil {
		return nil, fmt.Errorf("applog: a TLS config is required")
	}
	if cfg.GaugeInterval <= 0 {
		cfg.GaugeInterval = 15 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emitter{cfg: cfg, queue: make(chan *loggregator_v2.Envelope, cfg.QueueSize),
		changed: make(chan struct{}, 1), stop: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	// The agent is local: after it restarts, reconnect within seconds rather than after
	// gRPC's default backoff of up to two minutes (every line sent meanwhile is lost).
	reconnect := grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 5 * time.Second,
		Backoff: backoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}})
	client, err := loggregator.NewIngressClient(cfg.TLS, loggregator.WithAddr(cfg.Address),
		loggregator.WithContext(ctx), loggregator.WithLogger(clientLog{e}), loggregator.WithDialOptions(reconnect))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("loggregator client: %w", err)
	}
	e.client, e.cancel = client, cancel
	e.fwd.Go(e.forward)
	e.loops.Go(e.gaugeLoop)
	e.loops.Go(e.reportLoop)
	return e, nil
}

// SessionStarted records a session that reached an instance, from the client at clientAddr
// with the login's grant. When the grant names an app log stream it writes the access line
// there. The returned func records the end of the session.
func (e *Emitter) SessionStarted(grant *login.Grant, clientAddr string) (ended func()) {
	if e == nil {
		return func() {}
	}
	var tags map[string]string
	if grant != nil && grant.LogTags["source_id"] != "" {
		tags = grant.LogTags
	}
	e.conns.Add(1)
	e.gaugeChanged()
	if tags != nil {
		e.enqueue(logEnvelope(Accessed(clientAddr), tags))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if tags != nil {
				e.enqueue(logEnvelope(Ended(clientAddr), tags))
			}
			e.conns.Add(-1)
			e.gaugeChanged()
		})
	}
}

// logEnvelope is an OUT line in the app's stream: source_id and instance_id from the tags,
// and every tag on the envelope, as diego-logging-client's SendAppLog builds it.
func logEnvelope(line string, tags map[string]string) *loggregator_v2.Envelope {
	t := make(map[string]string, len(tags)+2)
	t["origin"] = Origin
	t["source_type"] = SourceType
	maps.Copy(t, tags)
	return &loggregator_v2.Envelope{
		Timestamp:  time.Now().UnixNano(),
		SourceId:   tags["source_id"],
		InstanceId: tags["instance_id"],
		Tags:       t,
		Message: &loggregator_v2.Envelope_Log{Log: &loggregator_v2.Log{
			Payload: []byte(line), Type: loggregator_v2.Log_OUT}},
	}
}

func (e *Emitter) gaugeEnvelope() *loggregator_v2.Envelope {
	return &loggregator_v2.Envelope{
		Timestamp:  time.Now().UnixNano(),
		SourceId:   e.cfg.SourceID,
		InstanceId: e.cfg.InstanceID,
		Tags:       map[string]string{"origin": Origin},
		Message: &loggregator_v2.Envelope_Gauge{Gauge: &loggregator_v2.Gauge{Metrics: map[string]*loggregator_v2.GaugeValue{
			GaugeName: {Unit: GaugeUnit, Value: float64(e.conns.Load())},
		}}},
	}
}

// enqueue never blocks: a full queue drops the envelope and counts it.
func (e *Emitter) enqueue(env *loggregator_v2.Envelope) {
	select {
	case e.queue <- env:
	default:
		e.dropped.Add(1)
		e.cfg.Metrics.LoggregatorDropped()
	}
}

func (e *Emitter) gaugeChanged() {
	select {
	case e.changed <- struct{}{}:
	default: // a gauge is already due
	}
}

// forward hands queued envelopes to the client (whose Emit blocks while its own buffer is
// full) until Close.
func (e *Emitter) forward() {
	for {
		select {
		case env := <-e.queue:
			e.client.Emit(env)
		case <-e.stop:
			for {
				select {
				case env := <-e.queue:
					e.client.Emit(env)
				default:
					return
				}
			}
		}
	}
}

// gaugeLoop sends the gauge when it changed (coalescing bursts) and every GaugeInterval.
func (e *Emitter) gaugeLoop() {
	t := time.NewTicker(e.cfg.GaugeInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-e.changed:
		case <-t.C:
		}
		e.enqueue(e.gaugeEnvelope())
	}
}

// reportLoop logs drops and send failures, at most once per ReportInterval each.
func (e *Emitter) reportLoop() {
	t := time.NewTicker(e.cfg.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			e.report()
			return
		case <-t.C:
			e.report()
		}
	}
}

func (e *Emitter) report() {
	if n := e.dropped.Swap(0); n > 0 {
		e.cfg.Logger.Warn("ssh-proxy.loggregator-envelopes-dropped", "count", n, "address", e.cfg.Address,
			"why", "the Loggregator agent is slow or down and the buffer is full")
	}
	if n := e.sendFailures.Swap(0); n > 0 {
		last, _ := e.lastFailure.Load().(string)
		e.cfg.Logger.Warn("ssh-proxy.loggregator-send-failed", "batches", n, "address", e.cfg.Address, "error", last)
	}
}

// clientLog receives the go-loggregator client's messages; the only one it prints is a
// failed batch send.
type clientLog struct{ e *Emitter }

const maxErrorText = 512

func (l clientLog) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	l.e.sendFailures.Add(1)
	l.e.lastFailure.Store(msg)
	l.e.cfg.Metrics.LoggregatorSendFailed()
}

func (l clientLog) Panicf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Close stops the emitter: it waits up to timeout for queued envelopes to be sent, then
// abandons the rest and ends the client's stream.
func (e *Emitter) Close(timeout time.Duration) {
	if e == nil {
		return
	}
	e.once.Do(func() {
		close(e.stop)
		e.loops.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if !waitOrDone(ctx, &e.fwd) {
			e.cancel() // unblocks the client's sender, so Emit returns
			e.fwd.Wait()
		}
		var closed sync.WaitGroup
		closed.Go(func() { _ = e.client.CloseSend() })
		if !waitOrDone(ctx, &closed) {
			e.cancel()
			closed.Wait()
		}
		e.cancel()
	})
}

// waitOrDone waits for wg until ctx ends; the helper goroutine ends with wg, which every
// caller waits for afterwards anyway.
func waitOrDone(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
