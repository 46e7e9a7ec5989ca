// Package debugserver serves what diego components serve on their debug address
// (diego.ssh_proxy.debug_addr, diego-sshd's -debugAddr): Go's pprof endpoints under
// /debug/pprof/, and /log-level, which takes the new lowest log level as the body of a POST or
// PUT (debug, info, warn, error or fatal), as code.cloudfoundry.org/debugserver does; also
// /block-profile-rate and /mutex-profile-fraction (an integer body; 0 or less turns them off).
//
// pprof exposes memory contents and /log-level changes what the process writes, so the address
// should be loopback (the job's default, 127.0.0.1:17016); Loopback tells the caller whether it is.
package debugserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"strings"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// LevelSetter is the logger whose level /log-level changes (*logging.Logger).
type LevelSetter interface {
	SetLevel(lager.LogLevel)
}

const maxBody = 64

// Handler is the debug server's mux.
func Handler(levels LevelSetter, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/log-level", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		name := strings.ToLower(body)
		level, err := logging.ParseLevel(name)
		if err != nil || name == "" {
			http.Error(w, "log level must be debug, info, warn, error or fatal", http.StatusBadRequest)
			return
		}
		levels.SetLevel(level)
		log.Info("log-level-changed", "log_level", level.String())
		fmt.Fprintf(w, "log level set to %s\n", level)
	})
	rate := func(set func(int)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			n, err := strconv.Atoi(body)
			if err != nil {
				http.Error(w, "body must be an integer", http.StatusBadRequest)
				return
			}
			set(max(n, 0))
		}
	}
	mux.HandleFunc("/block-profile-rate", rate(runtime.SetBlockProfileRate))
	mux.HandleFunc("/mutex-profile-fraction", rate(func(n int) { runtime.SetMutexProfileFraction(n) }))
	return mux
}

// readBody accepts POST and PUT with a short body, trimmed.
func readBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "use POST or PUT", http.StatusMethodNotAllowed)
		return "", false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		http.Error(w, "bad body", http.StatusBadRequest)
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Loopback reports whether addr (host:port) only listens on a loopback address. An empty host
// or a wildcard listens everywhere; a name counts only if it is "localhost".
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running debug server.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Start listens on addr and serves Handler until Close.
func Start(addr string, levels LevelSetter, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		srv: &http.Server{Handler: Handler(levels, log), ReadHeaderTimeout: 10 * time.Second,
			// pprof's profile and trace run for ?seconds= (30 by default).
			WriteTimeout: 5 * time.Minute, IdleTimeout: time.Minute},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug-server-failed", "error", err.Error())
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server (requests in flight get a second to finish) and waits for it.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		_ = s.srv.Close()
	}
	<-s.done
}
