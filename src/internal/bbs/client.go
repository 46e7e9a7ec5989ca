// Package bbs is a minimal client of the Diego BBS's protobuf-over-HTTPS API (mutual TLS),
// written against the published cloudfoundry/bbs models because code.cloudfoundry.org/bbs
// cannot be built here. It asks only what the ssh-proxy needs: the actual LRPs of a process
// at an index, and a desired LRP's routes.
package bbs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/app-ssh/app-ssh/internal/peer"
)

// BBS routes (cloudfoundry/bbs routes.go) and headers (cloudfoundry/bbs client.go).
const (
	ActualLRPsPath              = "/v1/actual_lrps/list"
	DesiredLRPByProcessGUIDPath = "/v1/desired_lrps/get_by_process_guid.r3"
	ProtoContentType            = "application/x-protobuf"
	RouterErrorHeader           = "X-Cf-Router-Error"
	RequestIDHeader             = "X-Vcap-Request-Id"
)

const (
	defaultTimeout = 10 * time.Second
	maxBody        = 16 << 20
)

// unavailable reports BBS as unreachable or answering uselessly (a *peer.UnavailableError).
func unavailable(cause string, err error) error {
	return &peer.UnavailableError{Peer: "BBS", Cause: cause, Err: err}
}

// Config says where the BBS is and which mTLS material to use.
type Config struct {
	Address string // https://host:port
	// TLS trusts the BBS's CA and presents the client certificate (the BBS is only reached
	// over mutual TLS); the config's loader (internal/tlsfiles) names the files.
	TLS *tls.Config
	// ServerName overrides the name checked in the BBS certificate (default: the host).
	ServerName string
	// Timeout bounds one request (default 10s); the caller's context may end it earlier.
	Timeout time.Duration
}

// Client talks to the BBS. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	timeout time.Duration
	http    *http.Client
}

// NewClient builds a client.
func NewClient(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Address, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("bbs: address %q is not an https URL", cfg.Address)
	}
	if cfg.TLS == nil || cfg.TLS.RootCAs == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("bbs: mutual TLS needs a CA and a client certificate")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	tlsCfg := cfg.TLS.Clone()
	tlsCfg.ServerName = cfg.ServerName
	tlsCfg.MinVersion = max(tlsCfg.MinVersion, tls.VersionTLS12)
	return &Client{base: u, timeout: cfg.Timeout, http: peer.HTTPClient(tlsCfg, cfg.Timeout, 8)}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// ActualLRPs lists the actual LRPs of processGUID at index (a negative index lists every
// index). A BBS error answer is returned as *Error; transport trouble as *peer.UnavailableError.
func (c *Client) ActualLRPs(ctx context.Context, processGUID string, index int32) ([]ActualLRP, error) {
	req := ActualLRPsRequest{ProcessGUID: processGUID}
	if index >= 0 {
		req.Index = &index
	}
	body, err := c.post(ctx, ActualLRPsPath, req.MarshalProto())
	if err != nil {
		return nil, err
	}
	resp, err := UnmarshalActualLRPsResponse(body)
	if err != nil {
		return nil, unavailable("undecodable ActualLRPsResponse", err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.ActualLRPs, nil
}

// DesiredLRPByProcessGUID fetches one desired LRP. A missing one is a *Error of type
// ResourceNotFound (errors.Is(err, ErrResourceNotFound)).
func (c *Client) DesiredLRPByProcessGUID(ctx context.Context, processGUID string) (*DesiredLRP, error) {
	body, err := c.post(ctx, DesiredLRPByProcessGUIDPath, DesiredLRPByProcessGUIDRequest{ProcessGUID: processGUID}.MarshalProto())
	if err != nil {
		return nil, err
	}
	resp, err := UnmarshalDesiredLRPResponse(body)
	if err != nil {
		return nil, unavailable("undecodable DesiredLRPResponse", err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if resp.DesiredLRP == nil {
		return nil, &Error{Type: ResourceNotFound, Message: "BBS answered without a desired LRP"}
	}
	return resp.DesiredLRP, nil
}

// post sends one protobuf request and returns the protobuf body of the answer. Like the
// upstream client, a router error header becomes a RouterError, and a non-protobuf answer is
// an error only when its status is not 2xx.
func (c *Client) post(ctx context.Context, path string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, unavailable("building request failed", err)
	}
	req.Header.Set("Content-Type", ProtoContentType)
	req.Header.Set("Accept", ProtoContentType)
	req.Header.Set(RequestIDHeader, requestID())

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unavailable(peer.DescribeNetErr(ctx, err), err)
	}
	defer resp.Body.Close()
	if v := resp.Header.Get(RouterErrorHeader); v != "" {
		return nil, &Error{Type: RouterError, Message: v}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, unavailable("reading response: "+peer.DescribeNetErr(ctx, err), err)
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != ProtoContentType {
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return nil, unavailable("endpoint "+path+" not found (HTTP 404)", nil)
		case resp.StatusCode > 299:
			return nil, unavailable(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
		default:
			return nil, unavailable(fmt.Sprintf("unexpected content type %q", mediaType), nil)
		}
	}
	if resp.StatusCode > 299 {
		// A protobuf error answer: the body is a response carrying an Error, or a bare Error.
		if e := errorFromBody(body); e != nil {
			return nil, e
		}
		return nil, unavailable(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	}
	return body, nil
}

// errorFromBody finds a BBS Error in a non-2xx protobuf body. Every BBS response message keeps
// its Error in field 1, so that is tried first; then the body as a bare Error.
func errorFromBody(body []byte) *Error {
	if r, err := UnmarshalActualLRPsResponse(body); err == nil && r.Error != nil {
		return r.Error
	}
	if e, err := UnmarshalError(body); err == nil && (e.Type != UnknownError || e.Message != "") {
		return e
	}
	return nil
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
