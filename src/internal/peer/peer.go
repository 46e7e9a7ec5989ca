// Package peer holds what the proxy's clients of its peers (UAA, Cloud Controller, BBS) share:
// the error for a peer that could not be asked or did not answer usefully, and the short,
// secret-free wording of transport failures that goes into it.
package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"
)

// UnavailableError means a peer could not be asked or did not answer usefully: a network or
// TLS error, a timeout, a 5xx answer or a malformed body. Its text is one line a user may see,
// e.g. "BBS unavailable: timed out"; it never holds request or response bodies.
type UnavailableError struct {
	Peer  string // "UAA", "Cloud Controller", "BBS"
	Cause string
	Err   error
}

func (e *UnavailableError) Error() string { return e.Peer + " unavailable: " + e.Cause }

// Unwrap returns the underlying error, if any.
func (e *UnavailableError) Unwrap() error { return e.Err }

// DescribeNetErr words a failed HTTP round trip for an UnavailableError: "timed out",
// "request canceled", "TLS: <verification problem>", or the failing operation and its cause.
// The URL (which may carry identifiers) is left out.
func DescribeNetErr(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.Is(ctx.Err(), context.Canceled):
		return "request canceled"
	}
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		return "TLS: " + ce.Err.Error()
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + ": " + oe.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// HTTPClient is the HTTP client of one peer: the dial, the TLS handshake, the wait for response
// headers and the whole exchange are each bounded by timeout (a caller's context may end a
// request sooner). tlsCfg (cloned) is used for https; nil means the system roots. Idle
// connections are kept for reuse, at most maxIdlePerHost per host.
func HTTPClient(tlsCfg *tls.Config, timeout time.Duration, maxIdlePerHost int) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		ForceAttemptHTTP2:     true,
	}
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg.Clone()
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}
