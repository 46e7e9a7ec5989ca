// Package ingressstub is a development stand-in, not a CF component: a Loggregator agent's v2
// ingress (the gRPC service loggregator.v2.Ingress, served with go-loggregator's generated
// types) on 127.0.0.1 over mutual TLS. It records every envelope it receives, can be stopped
// and started again on the same port (Loggregator down), and can hold its streams without
// reading them (Loggregator slow).
package ingressstub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/go-loggregator/v10/rpc/loggregator_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
)

// Server is a running ingress stand-in.
type Server struct {
	tls  *tls.Config
	addr string

	mu        sync.Mutex
	grpc      *grpc.Server
	served    sync.WaitGroup
	envelopes []*loggregator_v2.Envelope
	hang      chan struct{} // non-nil while streams are held unread
}

// New listens on addr ("127.0.0.1:0" for any port) with tlsCfg, which must carry the server
// certificate and ClientCAs: client certificates are always required and verified. It
// panics when it cannot listen, as httptest does.
func New(addr string, tlsCfg *tls.Config) *Server {
	if tlsCfg == nil || tlsCfg.ClientCAs == nil {
		panic("ingressstub: a TLS config with ClientCAs is required (the agent only speaks mutual TLS)")
	}
	cfg := tlsCfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	s := &Server{tls: cfg, addr: addr}
	if err := s.Start(); err != nil {
		panic("ingressstub: " + err.Error())
	}
	return s
}

// Addr is host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Port is the listening port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Start serves again on the same address after Stop.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpc != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.addr = ln.Addr().String()
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(s.tls)))
	loggregator_v2.RegisterIngressServer(g, ingress{s: s})
	s.grpc = g
	s.served.Go(func() { _ = g.Serve(ln) })
	return nil
}

// Stop closes the listener and every stream (the agent is down) until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	g := s.grpc
	s.grpc = nil
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
	s.mu.Unlock()
	if g != nil {
		g.Stop()
	}
	s.served.Wait()
}

// Close stops the server for good.
func (s *Server) Close() { s.Stop() }

// Hang makes every stream stop reading until Resume or Stop (the agent is slow): senders
// block once gRPC's flow-control window is full.
func (s *Server) Hang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang == nil {
		s.hang = make(chan struct{})
	}
}

// Resume ends Hang.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hang != nil {
		close(s.hang)
		s.hang = nil
	}
}

func (s *Server) held() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hang
}

func (s *Server) record(batch []*loggregator_v2.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range batch {
		s.envelopes = append(s.envelopes, proto.Clone(e).(*loggregator_v2.Envelope))
	}
}

// Envelopes is a copy of everything received so far, in arrival order.
func (s *Server) Envelopes() []*loggregator_v2.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*loggregator_v2.Envelope, len(s.envelopes))
	for i, e := range s.envelopes {
		out[i] = proto.Clone(e).(*loggregator_v2.Envelope)
	}
	return out
}

// Logs are the log envelopes received for sourceID ("" = every source).
func (s *Server) Logs(sourceID string) []*loggregator_v2.Envelope {
	var out []*loggregator_v2.Envelope
	for _, e := range s.Envelopes() {
		if e.GetLog() != nil && (sourceID == "" || e.GetSourceId() == sourceID) {
			out = append(out, e)
		}
	}
	return out
}

// Gauges are the values of the named gauge received so far, in arrival order.
func (s *Server) Gauges(name string) []float64 {
	var out []float64
	for _, e := range s.Envelopes() {
		if v, ok := e.GetGauge().GetMetrics()[name]; ok {
			out = append(out, v.GetValue())
		}
	}
	return out
}

// Reset forgets what was received.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envelopes = nil
}

// FormatLog renders a log envelope the way `cf logs` prints it:
//
//	2026-12-01T14:16:11.49+0000 [SSH/0] OUT Successful remote access by 127.0.0.1:54321
func FormatLog(e *loggregator_v2.Envelope) string {
	t := time.Unix(0, e.GetTimestamp())
	stream := "OUT"
	if e.GetLog().GetType() == loggregator_v2.Log_ERR {
		stream = "ERR"
	}
	source := e.GetTags()["source_type"]
	if source == "" {
		source = "UNKNOWN"
	}
	return fmt.Sprintf("%s [%s/%s] %s %s", t.Format("2006-01-02T15:04:05.00-0700"), source, e.GetInstanceId(),
		stream, strings.TrimRight(string(e.GetLog().GetPayload()), "\n"))
}

type ingress struct {
	loggregator_v2.UnimplementedIngressServer
	s *Server
}

// wait holds a stream while the server hangs; false when the stream's context ended.
func (i ingress) wait(ctx context.Context) bool {
	if h := i.s.held(); h != nil {
		select {
		case <-h:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (i ingress) Sender(stream loggregator_v2.Ingress_SenderServer) error {
	for {
		if !i.wait(stream.Context()) {
			return stream.Context().Err()
		}
		e, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&loggregator_v2.IngressResponse{})
		}
		if err != nil {
			return err
		}
		i.s.record([]*loggregator_v2.Envelope{e})
	}
}

func (i ingress) BatchSender(stream loggregator_v2.Ingress_BatchSenderServer) error {
	for {
		if !i.wait(stream.Context()) {
			return stream.Context().Err()
		}
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&loggregator_v2.BatchSenderResponse{})
		}
		if err != nil {
			return err
		}
		i.s.record(b.GetBatch())
	}
}

func (i ingress) Send(ctx context.Context, b *loggregator_v2.EnvelopeBatch) (*loggregator_v2.SendResponse, error) {
	if !i.wait(ctx) {
		return nil, ctx.Err()
	}
	i.s.record(b.GetBatch())
	return &loggregator_v2.SendResponse{}, nil
}
