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

// The Cloud Controller's refusals (cloud_controller_ng's AppsSSHController): each error wraps
// one of these, with the HTTP status and CC error code for the logs.
var (
	// ErrForbidden: 403 CF-NotAuthorized, the user has no write access to the app.
	ErrForbidden = errors.New("the user may not SSH into the app")
	// ErrNotFound: 404 CF-AppNotFound, no app (process) has that guid.
	ErrNotFound = errors.New("app not found")
	// ErrSSHDisabled: 400 CF-InvalidRequest, SSH is off for the app, its space or globally
	// (cc.allow_app_ssh_access).
	ErrSSHDisabled = errors.New("SSH is disabled for the app, its space or the platform")
	// ErrUnauthenticated: 401, the Cloud Controller did not accept the UAA token (the proxy just
	// obtained it from UAA, so UAA and the Cloud Controller disagree: a platform fault).
	ErrUnauthenticated = errors.New("the Cloud Controller did not accept the UAA token")
	// ErrRefused: any other 4xx, or a 400/404 without the Cloud Controller's error code: the
	// request did not reach the ssh_access check (for example a URL on the mutual-TLS port 9023,
	// whose nginx answers 400 without a client certificate, or a proxy that does not route
	// /internal/apps). A platform fault.
	ErrRefused = errors.New("the request did not reach the Cloud Controller's ssh_access check")
)

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
// "Authorization: bearer <token>". Errors wrap ErrForbidden, ErrNotFound, ErrSSHDisabled,
// ErrUnauthenticated or ErrRefused, or are *peer.UnavailableError; none contains the token.
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
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return Access{}, refusal(resp.StatusCode, body)
	case resp.StatusCode >= 500:
		return Access{}, unavailable(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	default:
		return Access{}, unavailable(fmt.Sprintf("unexpected HTTP %d", resp.StatusCode), nil)
	}
}

// refusal classifies a 4xx by status and the Cloud Controller's error code (see the Err* values).
func refusal(status int, body []byte) error {
	var e ccError
	_ = json.Unmarshal(body, &e)
	var sentinel error
	switch {
	case status == http.StatusForbidden:
		sentinel = ErrForbidden
	case status == http.StatusUnauthorized:
		sentinel = ErrUnauthenticated
	case status == http.StatusNotFound && e.ErrorCode == "CF-AppNotFound":
		sentinel = ErrNotFound
	case status == http.StatusBadRequest && e.ErrorCode == "CF-InvalidRequest":
		sentinel = ErrSSHDisabled
	default:
		sentinel = ErrRefused
	}
	if e.ErrorCode != "" {
		return fmt.Errorf("%w (HTTP %d, %s)", sentinel, status, capCode(e.ErrorCode))
	}
	return fmt.Errorf("%w (HTTP %d)", sentinel, status)
}

// capCode keeps a peer-supplied error code to one short printable token for the logs.
func capCode(code string) string {
	const max = 64
	if len(code) > max {
		code = code[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, code)
}
