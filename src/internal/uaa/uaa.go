// Package uaa trades the one-time codes that `cf ssh-code` prints for UAA access tokens, the
// way diego-ssh's ssh-proxy does: an authorization_code grant posted to the UAA token URL with
// the ssh-proxy's client credentials in HTTP basic auth.
package uaa

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/app-ssh/app-ssh/internal/peer"
)

// maxBody bounds how much of any UAA response is read.
const maxBody = 1 << 20

// defaultTimeout bounds one token request when the caller's context has no earlier deadline.
const defaultTimeout = 10 * time.Second

// ErrInvalidCode means UAA refused the code itself: it is unknown, already used or expired.
var ErrInvalidCode = errors.New("invalid or expired one-time code")

// ErrClientRejected means UAA refused the proxy's own client credentials (a configuration
// problem on the operator's side, not the user's).
var ErrClientRejected = errors.New("UAA rejected the ssh-proxy client credentials")

// unavailable reports UAA as unreachable or answering uselessly (a *peer.UnavailableError).
func unavailable(cause string, err error) error {
	return &peer.UnavailableError{Peer: "UAA", Cause: cause, Err: err}
}

// Config says where UAA is and how the proxy identifies itself to it.
type Config struct {
	TokenURL, ClientID, ClientSecret string
	// TLS is used for https token URLs; nil means the system roots.
	TLS *tls.Config
	// RedirectURI, when not empty, is sent as redirect_uri. diego-ssh sends none, and UAA only
	// needs one when the authorize request carried one; leave it empty to match upstream.
	RedirectURI string
	// Timeout bounds one exchange (default 10s); the caller's context may end it earlier.
	Timeout time.Duration
}

// Token is what UAA granted. Subject and UserName come from the access token's JWT claims
// (user_id, falling back to sub; user_name) when they can be decoded, else "".
type Token struct {
	AccessToken, TokenType string
	ExpiresIn              int
	Subject, UserName      string
}

// Client exchanges one-time codes. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

// NewClient checks cfg and builds a client.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("uaa: token URL %q is not an http(s) URL", cfg.TokenURL)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("uaa: client id is empty")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	return &Client{cfg: cfg, http: peer.HTTPClient(cfg.TLS, cfg.Timeout, 4)}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

type errorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// ExchangeCode trades a one-time code from `cf ssh-code` for an access token. Errors are
// ErrInvalidCode, ErrClientRejected or *peer.UnavailableError; none of them contain the code.
func (c *Client) ExchangeCode(ctx context.Context, code string) (Token, error) {
	if code == "" {
		return Token{}, ErrInvalidCode
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()

	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	if c.cfg.RedirectURI != "" {
		form.Set("redirect_uri", c.cfg.RedirectURI)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, unavailable("building request failed", err)
	}
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	resp, err := c.http.Do(req)
	if err != nil {
		return Token{}, unavailable(peer.DescribeNetErr(ctx, err), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Token{}, unavailable("reading response: "+peer.DescribeNetErr(ctx, err), err)
	}

	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500:
		return Token{}, unavailable(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnauthorized:
		var e errorResponse
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusUnauthorized && (e.Error == "invalid_client" || e.Error == "unauthorized") {
			return Token{}, ErrClientRejected
		}
		return Token{}, ErrInvalidCode
	case resp.StatusCode == http.StatusForbidden:
		return Token{}, ErrClientRejected
	default:
		return Token{}, unavailable(fmt.Sprintf("unexpected HTTP %d", resp.StatusCode), nil)
	}

	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return Token{}, unavailable("malformed token response", err)
	}
	if tr.AccessToken == "" {
		return Token{}, unavailable("token response has no access_token", nil)
	}
	if tr.TokenType == "" {
		tr.TokenType = "bearer"
	}
	t := Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, ExpiresIn: tr.ExpiresIn}
	t.Subject, t.UserName = Claims(tr.AccessToken)
	return t, nil
}

// Claims reads the user id (user_id, else sub) and user_name claims from a JWT without
// verifying its signature. It is only for naming the user in logs: Cloud Controller is what
// validates the token. Anything undecodable yields "".
func Claims(jwt string) (subject, userName string) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", ""
	}
	var claims struct {
		UserID   string `json:"user_id"`
		Sub      string `json:"sub"`
		UserName string `json:"user_name"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", ""
	}
	subject = claims.UserID
	if subject == "" {
		subject = claims.Sub
	}
	return subject, claims.UserName
}
