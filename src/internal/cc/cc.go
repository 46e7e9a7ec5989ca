// Package cc asks the Cloud Controller whether a user may SSH into an app instance, through
// the endpoint diego-ssh's ssh-proxy uses: GET /internal/apps/{guid}/ssh_access/{index} with the
// user's UAA bearer token. A 200 answer carries the process guid to look up in the BBS.
package cc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/app-ssh/app-ssh/internal/peer"
)

const (
	maxBody        = 1 << 20
	defaultTimeout = 10 * time.Second
)

// ErrForbidden means the Cloud Controller refused: the token is not valid for it (401), the
// user may not access the app (403), or SSH is disabled for the app, its space or globally
// (CC answers that with 400 CF-InvalidRequest).
var ErrForbidden = errors.New("not authorized, or SSH is disabled for the app or its space")

// ErrNotFound means the Cloud Controller does not know the app (404).
var ErrNotFound = errors.New("app or instance not found")

// unavailable reports Cloud Controller as unreachable or answering uselessly (a *peer.UnavailableError).
func unavailable(cause string, err error) error {
	return &peer.UnavailableError{Peer: "Cloud Controller", Cause: cause, Err: err}
}

// Config says where the Cloud Controller is.
type Config struct {
	// InternalURL is the base URL the ssh_access endpoint hangs off (for example
	// https://cloud-controller-ng.service.cf.internal:9024).
	InternalURL string
	// TLS is used for https URLs; nil means the system roots.
	TLS *tls.Config
	// Timeout bounds one request (default 10s); the caller's context may end it earlier.
	Timeout time.Duration
}

// Access is what the Cloud Controller granted.
type Access struct{ ProcessGUID string }

// Client talks to the Cloud Controller. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	timeout time.Duration
	http    *http.Client
}

// NewClient checks cfg and builds a client.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.InternalURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cc: internal URL %q is not an http(s) URL", cfg.InternalURL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	return &Client{base: u, timeout: cfg.Timeout, http: peer.HTTPClient(cfg.TLS, cfg.Timeout, 4)}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ccError is the v2-style error body the Cloud Controller answers with.
type ccError struct {
	Description string `json:"description"`
	ErrorCode   string `json:"error_code"`
	Code        int    `json:"code"`
}

// SSHAccess asks GET {InternalURL}/internal/apps/{appGUID}/ssh_access/{index} with
// "Authorization: bearer <token>". Errors wrap ErrForbidden or ErrNotFound, or are
// *peer.UnavailableError; none contains the token.
func (c *Client) SSHAccess(ctx context.Context, accessToken, appGUID string, index int) (Access, error) {
	if appGUID == "" || index < 0 {
		return Access{}, fmt.Errorf("%w: bad app guid or index", ErrNotFound)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := *c.base
	tail := "/ssh_access/" + strconv.Itoa(index)
	u.Path = c.base.Path + "/internal/apps/" + appGUID + tail
	u.RawPath = c.base.EscapedPath() + "/internal/apps/" + url.PathEscape(appGUID) + tail
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Access{}, unavailable("building request failed", err)
	}
	req.Header.Set("Authorization", "bearer "+accessToken)
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	if err != nil {
		return Access{}, unavailable(peer.DescribeNetErr(ctx, err), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Access{}, unavailable("reading response: "+peer.DescribeNetErr(ctx, err), err)
	}

	switch {
	case resp.StatusCode == http.StatusOK:
		var out struct {
			ProcessGUID string `json:"process_guid"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return Access{}, unavailable("malformed ssh_access response", err)
		}
		if out.ProcessGUID == "" {
			return Access{}, unavailable("ssh_access response has no process_guid", nil)
		}
		return Access{ProcessGUID: out.ProcessGUID}, nil
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden:
		return Access{}, wrap(ErrForbidden, resp.StatusCode, body)
	case resp.StatusCode == http.StatusNotFound:
		return Access{}, wrap(ErrNotFound, resp.StatusCode, body)
	case resp.StatusCode >= 500:
		return Access{}, unavailable(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	default:
		return Access{}, unavailable(fmt.Sprintf("unexpected HTTP %d", resp.StatusCode), nil)
	}
}

// wrap adds the Cloud Controller's error code (such as CF-AppNotFound) for the logs.
func wrap(sentinel error, status int, body []byte) error {
	var e ccError
	if json.Unmarshal(body, &e) == nil && e.ErrorCode != "" {
		return fmt.Errorf("%w (HTTP %d, %s)", sentinel, status, e.ErrorCode)
	}
	return fmt.Errorf("%w (HTTP %d)", sentinel, status)
}
