// Package standin is the machinery shared by the development stand-ins (uaastub, ccstub,
// bbsstub): an HTTP(S) server on 127.0.0.1 whose every request first asks the stand-in which
// fault to play, and a Close that ends hanging requests and waits for every goroutine the
// server started. What a stand-in answers, in normal operation and when it fails, stays in
// the stand-in.
package standin

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Fault is what the server does with one request.
type Fault int

const (
	// None hands the request to Options.Handler.
	None Fault = iota
	// Down drops the connection without answering.
	Down
	// Hang holds the request unanswered until the client gives up or Close, then drops it.
	Hang
	// ServerError hands the request to Options.ServerError.
	ServerError
)

// Options describes a stand-in server.
type Options struct {
	// Name prefixes panic messages ("ccstub: listen: …").
	Name string
	// TLS, when non-nil, is cloned and served (https); nil serves plain http.
	TLS *tls.Config
	// Fault is asked once for each request that arrives before Close; nil means always None.
	// It runs on the request's goroutine, so it may count requests.
	Fault func() Fault
	// Handler gives the stand-in's normal answers.
	Handler http.Handler
	// ServerError answers requests while Fault says ServerError; nil answers a bare 500.
	ServerError http.Handler
}

// Server is a running stand-in server on 127.0.0.1.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	baseURL string
	opts    Options

	serveWG sync.WaitGroup // the Serve goroutine
	reqWG   sync.WaitGroup // requests inside the fault middleware
	closing chan struct{}  // closed by Close: ends hanging requests
	once    sync.Once

	mu     sync.Mutex
	closed bool
}

// Start listens on 127.0.0.1:0 and serves o. It panics if o.Handler is nil or it cannot
// listen, as httptest does.
func Start(o Options) *Server {
	if o.Handler == nil {
		panic(o.Name + ": standin: a Handler is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(o.Name + ": listen: " + err.Error())
	}
	scheme := "http"
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS.Clone())
		scheme = "https"
	}
	s := &Server{
		ln:      ln,
		baseURL: scheme + "://" + ln.Addr().String(),
		opts:    o,
		closing: make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.srv.Serve(ln)
	}()
	return s
}

// URL is the root URL, http:// or https:// with the listening address.
func (s *Server) URL() string { return s.baseURL }

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, ends hanging requests and waits for every goroutine it started.
// Calling it again does nothing.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.closing)
		_ = s.srv.Close()
		s.serveWG.Wait()
		s.reqWG.Wait()
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// The closed check and the Add share the lock, so no Add can follow Close's Wait.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.reqWG.Add(1)
	s.mu.Unlock()
	defer s.reqWG.Done()

	fault := None
	if s.opts.Fault != nil {
		fault = s.opts.Fault()
	}
	switch fault {
	case Down:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // net/http drops the connection without an answer
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		panic(http.ErrAbortHandler)
	case ServerError:
		if s.opts.ServerError != nil {
			s.opts.ServerError.ServeHTTP(w, r)
			return
		}
		http.Error(w, "stand-in server error", http.StatusInternalServerError)
		return
	}
	s.opts.Handler.ServeHTTP(w, r)
}
