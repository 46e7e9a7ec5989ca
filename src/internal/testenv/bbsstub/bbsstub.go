// Package bbsstub is a development stand-in, not a CF component: a tiny Diego BBS that
// answers POST /v1/actual_lrps/list and POST /v1/desired_lrps/get_by_process_guid.r3 with the
// same protobuf messages the real BBS sends, over mutual TLS, with programmable LRPs and fault
// injection.
package bbsstub

import (
	"crypto/tls"
	"io"
	"net/http"
	"sync"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/testenv/standin"
)

// Mode is the stand-in's fault-injection state.
type Mode int

const (
	// Normal answers like the BBS.
	Normal Mode = iota
	// Down drops every connection without answering.
	Down
	// Hang accepts requests and never answers (until the client gives up or Close).
	Hang
	// ErrorResponse answers HTTP 200 with the response's Error set (see SetErrorResponse).
	ErrorResponse
	// ServerError answers HTTP 500 with a plain-text body, as a failing router would.
	ServerError
)

// Request is one request the stand-in decoded.
type Request struct {
	Path        string
	ProcessGUID string
	Index       *int32 // nil when absent (actual_lrps/list only)
}

const maxRequestBytes = 1 << 20

// Server is a running BBS stand-in on 127.0.0.1.
type Server struct {
	core *standin.Server

	mu       sync.Mutex
	mode     Mode
	errResp  bbs.Error
	desired  map[string]bbs.DesiredLRP
	actual   map[string][]bbs.ActualLRP
	requests []Request
}

// New starts a stand-in serving with tlsCfg, which must carry the server certificate and
// ClientCAs: client certificates are always required and verified (the clone's ClientAuth is
// forced to RequireAndVerifyClientCert). It panics on a nil config or when it cannot listen.
func New(tlsCfg *tls.Config) *Server {
	if tlsCfg == nil || tlsCfg.ClientCAs == nil {
		panic("bbsstub: a TLS config with ClientCAs is required (the BBS only speaks mutual TLS)")
	}
	cfg := tlsCfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.NextProtos = []string{"http/1.1"}
	s := &Server{
		errResp: bbs.Error{Type: bbs.Unrecoverable, Message: "bbs stand-in is in ErrorResponse mode"},
		desired: map[string]bbs.DesiredLRP{},
		actual:  map[string][]bbs.ActualLRP{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+bbs.ActualLRPsPath, s.actualLRPs)
	mux.HandleFunc("POST "+bbs.DesiredLRPByProcessGUIDPath, s.desiredLRP)
	s.core = standin.Start(standin.Options{
		Name:        "bbsstub",
		TLS:         cfg,
		Fault:       s.fault,
		Handler:     mux,
		ServerError: http.HandlerFunc(serverError),
	})
	return s
}

// URL is the https address to configure as the BBS address.
func (s *Server) URL() string { return s.core.URL() }

// Addr is the listening address.
func (s *Server) Addr() string { return s.core.Addr() }

// SetMode switches fault injection.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetErrorResponse sets the Error sent in ErrorResponse mode.
func (s *Server) SetErrorResponse(e bbs.Error) {
	s.mu.Lock()
	s.errResp = e
	s.mu.Unlock()
}

// SetDesiredLRP adds or replaces a desired LRP (keyed by its process guid).
func (s *Server) SetDesiredLRP(d bbs.DesiredLRP) {
	s.mu.Lock()
	s.desired[d.ProcessGUID] = d
	s.mu.Unlock()
}

// RemoveDesiredLRP forgets a desired LRP.
func (s *Server) RemoveDesiredLRP(processGUID string) {
	s.mu.Lock()
	delete(s.desired, processGUID)
	s.mu.Unlock()
}

// SetActualLRPs replaces every actual LRP of processGUID; the LRPs' own ProcessGUID fields are
// set to it.
func (s *Server) SetActualLRPs(processGUID string, lrps ...bbs.ActualLRP) {
	cp := make([]bbs.ActualLRP, len(lrps))
	for i, a := range lrps {
		a.ProcessGUID = processGUID
		a.Ports = append([]bbs.PortMapping(nil), a.Ports...)
		cp[i] = a
	}
	s.mu.Lock()
	s.actual[processGUID] = cp
	s.mu.Unlock()
}

// Requests lists the requests decoded so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Close stops the server, ends hanging requests and waits for every goroutine it started.
func (s *Server) Close() { s.core.Close() }

// faults are the modes the shared core plays; Normal and ErrorResponse map to standin.None
// (the handlers answer ErrorResponse themselves).
var faults = map[Mode]standin.Fault{Down: standin.Down, Hang: standin.Hang, ServerError: standin.ServerError}

// fault says which fault the current mode plays.
func (s *Server) fault() standin.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return faults[s.mode]
}

// serverError answers as a failing router in front of the BBS would: 500, plain text.
func serverError(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "stand-in server error", http.StatusInternalServerError)
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		writeProto(w, bbs.ActualLRPsResponse{Error: &bbs.Error{Type: bbs.InvalidRequest, Message: "could not read request body"}}.MarshalProto())
		return nil, false
	}
	return b, true
}

func writeProto(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", bbs.ProtoContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) errorMode() *bbs.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode != ErrorResponse {
		return nil
	}
	e := s.errResp
	return &e
}

func (s *Server) actualLRPs(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := bbs.UnmarshalActualLRPsRequest(body)
	if err != nil {
		writeProto(w, bbs.ActualLRPsResponse{Error: &bbs.Error{Type: bbs.InvalidProtobufMessage, Message: err.Error()}}.MarshalProto())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, ProcessGUID: req.ProcessGUID, Index: req.Index})
	s.mu.Unlock()
	if e := s.errorMode(); e != nil {
		writeProto(w, bbs.ActualLRPsResponse{Error: e}.MarshalProto())
		return
	}
	s.mu.Lock()
	var out []bbs.ActualLRP
	for pg, lrps := range s.actual {
		if req.ProcessGUID != "" && pg != req.ProcessGUID {
			continue
		}
		for _, a := range lrps {
			if req.Index != nil && a.Index != *req.Index {
				continue
			}
			if req.Domain != "" && a.Domain != req.Domain {
				continue
			}
			if req.CellID != "" && a.CellID != req.CellID {
				continue
			}
			out = append(out, a)
		}
	}
	s.mu.Unlock()
	writeProto(w, bbs.ActualLRPsResponse{ActualLRPs: out}.MarshalProto())
}

func (s *Server) desiredLRP(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req, err := bbs.UnmarshalDesiredLRPByProcessGUIDRequest(body)
	if err != nil {
		writeProto(w, bbs.DesiredLRPResponse{Error: &bbs.Error{Type: bbs.InvalidProtobufMessage, Message: err.Error()}}.MarshalProto())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Path: r.URL.Path, ProcessGUID: req.ProcessGUID})
	d, found := s.desired[req.ProcessGUID]
	s.mu.Unlock()
	if e := s.errorMode(); e != nil {
		writeProto(w, bbs.DesiredLRPResponse{Error: e}.MarshalProto())
		return
	}
	if req.ProcessGUID == "" {
		writeProto(w, bbs.DesiredLRPResponse{Error: &bbs.Error{Type: bbs.InvalidRequest, Message: "process_guid is required"}}.MarshalProto())
		return
	}
	if !found {
		writeProto(w, bbs.DesiredLRPResponse{Error: &bbs.Error{Type: bbs.ResourceNotFound, Message: "the requested resource could not be found"}}.MarshalProto())
		return
	}
	writeProto(w, bbs.DesiredLRPResponse{DesiredLRP: &d}.MarshalProto())
}
