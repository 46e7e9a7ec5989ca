package peer_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/peer"
)

func TestUnavailableErrorNamesPeerAndUnwraps(t *testing.T) {
	cause := errors.New("boom")
	err := error(&peer.UnavailableError{Peer: "BBS", Cause: "HTTP 502", Err: cause})
	if err.Error() != "BBS unavailable: HTTP 502" {
		t.Errorf("Error() = %q", err.Error())
	}
	if !errors.Is(err, cause) {
		t.Error("does not unwrap to its cause")
	}
}

func TestDescribeNetErr(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithDeadline(live, time.Unix(0, 0))
	defer cancel()
	canceled, cancel2 := context.WithCancel(live)
	cancel2()
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tlsErr := &url.Error{Op: "Post", URL: "https://bbs/v1?secret", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}
	cases := []struct {
		ctx  context.Context
		err  error
		want string
	}{
		{expired, errors.New("x"), "timed out"},
		{canceled, errors.New("x"), "request canceled"},
		{live, &url.Error{Op: "Get", URL: "https://uaa/token?code=SECRET", Err: opErr}, "dial: connection refused"},
		{live, tlsErr, "TLS: x509: certificate signed by unknown authority"},
		{live, &url.Error{Op: "Get", URL: "https://cc/?SECRET", Err: errors.New("EOF")}, "EOF"},
	}
	for _, c := range cases {
		if got := peer.DescribeNetErr(c.ctx, c.err); got != c.want {
			t.Errorf("DescribeNetErr(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestHTTPClientBoundsAHangingPeerAndUsesItsTLSConfig(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer close(release)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	untrusting := peer.HTTPClient(nil, 2*time.Second, 1)
	if _, err := untrusting.Get(srv.URL); err == nil {
		t.Fatal("a client without the peer's CA accepted its certificate")
	}

	c := peer.HTTPClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, 200*time.Millisecond, 1)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("trusted request failed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	_, err = c.Get(srv.URL + "/hang")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a hanging peer gave %v, want a timeout", err)
	}
}
