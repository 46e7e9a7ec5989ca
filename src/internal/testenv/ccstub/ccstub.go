// Package ccstub is a development stand-in, not a CF component: it answers the Cloud
// Controller's GET /internal/apps/{guid}/ssh_access/{index} the way cloud_controller_ng does
// (200 {"process_guid": …}, 400 CF-InvalidRequest when SSH is disabled, 401, 403, 404), with
// programmable apps and fault injection.
package ccstub

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/app-ssh/app-ssh/internal/testenv/standin"
)

// Mode is the stand-in's fault-injection state.
type Mode int

const (
	// Normal answers like the Cloud Controller.
	Normal Mode = iota
	// Down drops every connection without answering.
	Down
	// Hang accepts requests and never answers (until the client gives up or Close).
	Hang
	// ServerError answers 500 with a CC-shaped error body.
	ServerError
)

// Validator decides whether a bearer token is genuine and names its user. uaastub's
// (*Server).Validator fits.
type Validator func(token string) (user string, ok bool)

// Event records one granted access, like CC's audit.app.ssh-authorized event.
type Event struct {
	AppGUID string
	Index   int
	User    string
}

type app struct {
	processGUID string
	instances   int
	sshEnabled  bool
	allowed     map[string]bool // empty: every valid user
}

// Server is a running Cloud Controller stand-in on 127.0.0.1.
type Server struct {
	core *standin.Server

	mu          sync.Mutex
	mode        Mode
	validator   Validator
	apps        map[string]*app
	strictIndex bool
	events      []Event
	requests    int
}

// New starts a stand-in; with a non-nil tlsCfg it serves https. Until SetValidator is
// called, any non-empty token is accepted and names itself as the user. It panics if it
// cannot listen on 127.0.0.1, as httptest does.
func New(tlsCfg *tls.Config) *Server {
	s := &Server{
		apps:      map[string]*app{},
		validator: func(t string) (string, bool) { return t, t != "" },
	}
	s.core = standin.Start(standin.Options{
		Name:        "ccstub",
		TLS:         tlsCfg,
		Fault:       s.fault,
		Handler:     http.HandlerFunc(s.serveHTTP),
		ServerError: http.HandlerFunc(serverError),
	})
	return s
}

// URL is the base URL to configure as the Cloud Controller's internal URL.
func (s *Server) URL() string { return s.core.URL() }

// SetValidator sets how bearer tokens are checked.
func (s *Server) SetValidator(v Validator) {
	s.mu.Lock()
	s.validator = v
	s.mu.Unlock()
}

// SetMode switches fault injection.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// SetStrictIndex makes an index at or beyond the app's instance count answer 404. The real
// Cloud Controller does not check the index (the BBS lookup fails instead), so this is off by
// default.
func (s *Server) SetStrictIndex(strict bool) {
	s.mu.Lock()
	s.strictIndex = strict
	s.mu.Unlock()
}

// AddApp adds (or replaces) an app. allowedUsers are the users (as named by the validator)
// who may SSH in, like space developers; none means every user with a valid token.
func (s *Server) AddApp(appGUID, processGUID string, instances int, sshEnabled bool, allowedUsers ...string) {
	a := &app{processGUID: processGUID, instances: instances, sshEnabled: sshEnabled, allowed: map[string]bool{}}
	for _, u := range allowedUsers {
		a.allowed[u] = true
	}
	s.mu.Lock()
	s.apps[appGUID] = a
	s.mu.Unlock()
}

// SetSSHEnabled turns SSH on or off for a known app; it reports whether the app exists.
func (s *Server) SetSSHEnabled(appGUID string, enabled bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[appGUID]
	if ok {
		a.sshEnabled = enabled
	}
	return ok
}

// RemoveApp forgets an app.
func (s *Server) RemoveApp(appGUID string) {
	s.mu.Lock()
	delete(s.apps, appGUID)
	s.mu.Unlock()
}

// Events lists the accesses granted so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Requests is how many HTTP requests reached the handler (in any mode).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Close stops the server, ends hanging requests and waits for every goroutine it started.
func (s *Server) Close() { s.core.Close() }

// faults are the modes the shared core plays; the others, Normal, are standin.None.
var faults = map[Mode]standin.Fault{Down: standin.Down, Hang: standin.Hang, ServerError: standin.ServerError}

// fault counts a request that reached the server and says which fault the mode plays.
func (s *Server) fault() standin.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	return faults[s.mode]
}

func serverError(w http.ResponseWriter, _ *http.Request) {
	ccError(w, http.StatusInternalServerError, 10001, "UnknownError", "An unknown error occurred.")
}

func ccError(w http.ResponseWriter, status, code int, errorCode, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"description": desc, "error_code": errorCode, "code": code})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	validate, strict := s.validator, s.strictIndex
	s.mu.Unlock()

	// /internal/apps/{guid}/ssh_access/{index}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) != 5 || parts[0] != "internal" || parts[1] != "apps" || parts[3] != "ssh_access" || parts[2] == "" {
		ccError(w, http.StatusNotFound, 10000, "CF-NotFound", "Unknown request")
		return
	}
	if r.Method != http.MethodGet {
		ccError(w, http.StatusNotFound, 10000, "CF-NotFound", "Unknown request")
		return
	}
	appGUID := parts[2]
	index, err := strconv.Atoi(parts[4])
	if err != nil || index < 0 {
		ccError(w, http.StatusNotFound, 10000, "CF-NotFound", "Unknown request")
		return
	}

	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "bearer") || token == "" {
		ccError(w, http.StatusUnauthorized, 10002, "CF-NotAuthenticated", "Authentication error")
		return
	}
	user, ok := validate(token)
	if !ok {
		ccError(w, http.StatusUnauthorized, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
		return
	}

	s.mu.Lock()
	a, exists := s.apps[appGUID]
	var snapshot app
	if exists {
		snapshot = *a
	}
	s.mu.Unlock()
	if !exists {
		ccError(w, http.StatusNotFound, 100004, "CF-AppNotFound", "The app could not be found: "+appGUID)
		return
	}
	if len(snapshot.allowed) > 0 && !snapshot.allowed[user] {
		ccError(w, http.StatusForbidden, 10003, "CF-NotAuthorized", "You are not authorized to perform the requested action")
		return
	}
	if !snapshot.sshEnabled {
		ccError(w, http.StatusBadRequest, 1004, "CF-InvalidRequest", "The request is invalid")
		return
	}
	if strict && index >= snapshot.instances {
		ccError(w, http.StatusNotFound, 100004, "CF-AppNotFound", "The app could not be found: "+appGUID)
		return
	}

	s.mu.Lock()
	s.events = append(s.events, Event{AppGUID: appGUID, Index: index, User: user})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]string{"process_guid": snapshot.processGUID})
}
