// Package uaastub is a development stand-in, not a CF component: a tiny UAA token endpoint
// that hands out one-time codes and trades them, over the real UAA wire format, for HS256
// JWT access tokens, with fault injection for tests and local runs.
package uaastub

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/app-ssh/app-ssh/internal/testenv/standin"
)

// Mode is the stand-in's fault-injection state.
type Mode int

const (
	// Normal answers like UAA.
	Normal Mode = iota
	// Down drops every connection without answering.
	Down
	// Hang accepts requests and never answers (until the client gives up or Close).
	Hang
	// ServerError answers 503 with a UAA-shaped error body.
	ServerError
)

// Default identity used by IssueCode.
const (
	DefaultUserID   = "0b6a4c1e-5d71-4c43-9a3e-6f1d2f6a9c01"
	DefaultUserName = "developer@example.com"
)

// TokenPath is where the token endpoint is served.
const TokenPath = "/oauth/token"

const (
	defaultCodeTTL  = 5 * time.Minute
	tokenValidity   = 12 * time.Hour
	maxOutstanding  = 10000
	maxRequestBytes = 64 << 10
)

type grant struct {
	userID, userName string
	expires          time.Time
}

// Server is a running UAA stand-in on 127.0.0.1.
type Server struct {
	clientID, clientSecret string
	key                    []byte

	core *standin.Server

	mu        sync.Mutex
	mode      Mode
	codes     map[string]grant
	codeTTL   time.Duration
	exchanges int
	requests  int
}

// New starts a stand-in that accepts clientID/clientSecret via HTTP basic auth. With a non-nil
// tlsCfg it serves https with that configuration, else plain http. It panics if it cannot
// listen on 127.0.0.1, as httptest does.
func New(clientID, clientSecret string, tlsCfg *tls.Config) *Server {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("uaastub: " + err.Error())
	}
	s := &Server{
		clientID:     clientID,
		clientSecret: clientSecret,
		key:          key,
		codes:        map[string]grant{},
		codeTTL:      defaultCodeTTL,
	}
	s.core = standin.Start(standin.Options{
		Name:        "uaastub",
		TLS:         tlsCfg,
		Fault:       s.fault,
		Handler:     http.HandlerFunc(s.serveHTTP),
		ServerError: http.HandlerFunc(serverError),
	})
	return s
}

// URL is the token URL (…/oauth/token).
func (s *Server) URL() string { return s.core.URL() + TokenPath }

// BaseURL is the server's root URL.
func (s *Server) BaseURL() string { return s.core.URL() }

// SetMode switches fault injection.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// IssueCode returns a fresh single-use code for the default user, as `cf ssh-code` would.
func (s *Server) IssueCode() string { return s.IssueCodeFor(DefaultUserID, DefaultUserName) }

// IssueCodeFor returns a fresh single-use code for the given user.
func (s *Server) IssueCodeFor(userID, userName string) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("uaastub: " + err.Error())
	}
	code := hex.EncodeToString(b)[:10]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.codes) >= maxOutstanding {
		now := time.Now()
		for c, g := range s.codes {
			if now.After(g.expires) {
				delete(s.codes, c)
			}
		}
	}
	s.codes[code] = grant{userID: userID, userName: userName, expires: time.Now().Add(s.codeTTL)}
	return code
}

// ExpireCodes makes every outstanding code expired (they are still recognised, and refused).
func (s *Server) ExpireCodes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for c, g := range s.codes {
		g.expires = past
		s.codes[c] = g
	}
}

// Exchanges is how many codes were successfully traded for tokens.
func (s *Server) Exchanges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges
}

// Requests is how many HTTP requests reached the handler (in any mode).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ValidateToken checks that token was issued by this stand-in and has not expired, and
// returns its user id and name. It is meant as the ccstub's token validator.
func (s *Server) ValidateToken(token string) (userID, userName string, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
		return "", "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", "", false
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil || time.Now().Unix() >= c.Exp {
		return "", "", false
	}
	return c.UserID, c.UserName, true
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
	oauthError(w, http.StatusServiceUnavailable, "server_error", "UAA stand-in is in ServerError mode")
}

type claims struct {
	JTI       string   `json:"jti"`
	Sub       string   `json:"sub"`
	UserID    string   `json:"user_id"`
	UserName  string   `json:"user_name"`
	Origin    string   `json:"origin"`
	ClientID  string   `json:"client_id"`
	CID       string   `json:"cid"`
	GrantType string   `json:"grant_type"`
	Scope     []string `json:"scope"`
	Aud       []string `json:"aud"`
	Iss       string   `json:"iss"`
	Iat       int64    `json:"iat"`
	Exp       int64    `json:"exp"`
}

func (s *Server) mint(g grant) (token, jti string, err error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	jti = hex.EncodeToString(raw)
	now := time.Now()
	c := claims{
		JTI: jti, Sub: g.userID, UserID: g.userID, UserName: g.userName,
		Origin: "uaa", ClientID: s.clientID, CID: s.clientID, GrantType: "authorization_code",
		Scope: []string{"openid", "cloud_controller.read", "cloud_controller.write"},
		Aud:   []string{"cloud_controller", "openid"}, Iss: s.URL(),
		Iat: now.Unix(), Exp: now.Add(tokenValidity).Unix(),
	}
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "uaastub"})
	payload, err := json.Marshal(c)
	if err != nil {
		return "", "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), jti, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != TokenPath {
		oauthError(w, http.StatusNotFound, "not_found", "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Request method '"+r.Method+"' not supported")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="UAA/client", error="unauthorized", error_description="Bad credentials"`)
		oauthError(w, http.StatusUnauthorized, "unauthorized", "Bad credentials")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+gt)
		return
	}
	code := r.PostForm.Get("code")
	if code == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "An authorization code must be supplied.")
		return
	}

	s.mu.Lock()
	g, found := s.codes[code]
	if found {
		delete(s.codes, code) // single use, even when expired
	}
	s.mu.Unlock()
	if !found || time.Now().After(g.expires) {
		// Real UAA echoes the code here; the stand-in does not repeat secrets.
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
		return
	}
	token, jti, err := s.mint(g)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not mint token")
		return
	}
	s.mu.Lock()
	s.exchanges++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "bearer",
		"expires_in":   int(tokenValidity / time.Second),
		"scope":        "openid cloud_controller.read cloud_controller.write",
		"jti":          jti,
	})
}

// Validator returns ValidateToken in the shape ccstub.Validator expects (the user id names
// the user).
func (s *Server) Validator() func(token string) (user string, ok bool) {
	return func(token string) (string, bool) {
		id, _, ok := s.ValidateToken(token)
		return id, ok
	}
}
