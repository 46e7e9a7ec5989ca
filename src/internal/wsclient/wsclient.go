// Package wsclient carries a byte stream (an SSH connection, when run as OpenSSH's
// ProxyCommand) over a WebSocket to an SSH-over-WebSocket endpoint (Cloud Foundry RFC-0029):
// what is read from stdin goes out as binary messages, what arrives is written to stdout.
//
// WebSocket has no half-close: when stdin ends, a normal close frame is sent and whatever the
// server still sends before its own close frame is written out. A normal close by the server
// (or the server simply ending the connection) is success.
package wsclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// DefaultDialTimeout bounds the connection, TLS handshake and upgrade.
const DefaultDialTimeout = 30 * time.Second

// chunk is the most one binary message carries: what one read of stdin returns.
const chunk = 32 << 10

// Options configure Run.
type Options struct {
	URL         string // ws:// or wss://
	CACertFile  string // PEM roots to trust instead of the system pool (private CAs)
	DialTimeout time.Duration
	// Proxy picks an HTTP proxy for the request; http.ProxyFromEnvironment when nil
	// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
}

// Error is a failure worded as one line naming the URL and the cause.
type Error struct {
	URL   string
	Cause string
	Err   error
}

func (e *Error) Error() string { return e.URL + ": " + e.Cause }
func (e *Error) Unwrap() error { return e.Err }

// Run dials opts.URL and relays stdin and stdout over it until the connection ends or ctx is
// cancelled. It returns nil when the server ends the connection normally, after stdin's end
// was acknowledged, or after ctx was cancelled.
//
// Run returns as soon as the server's side has ended. The goroutine reading stdin stops with it
// when stdin supports read deadlines (pipes opened non-blocking, see the command); otherwise it
// stops at stdin's next EOF or error, or when the process exits.
func Run(ctx context.Context, opts Options, stdin io.Reader, stdout io.Writer) error {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return &Error{URL: opts.URL, Cause: "not a ws:// or wss:// URL (example: wss://ssh.SYSTEM_DOMAIN)", Err: err}
	}
	target := u.Redacted()
	conn, err := dial(ctx, opts, u)
	if err != nil {
		return &Error{URL: target, Cause: describeDialError(err), Err: err}
	}
	nc := websocket.NetConn(context.Background(), conn, websocket.MessageBinary)
	defer nc.Close()
	// Cancelling ctx (the command's SIGHUP, SIGTERM, SIGINT: ssh sends SIGHUP as it exits) ends
	// the connection with a going-away close.
	stopOnCancel := context.AfterFunc(ctx, func() { _ = conn.Close(websocket.StatusGoingAway, "client exiting") })
	defer stopOnCancel()

	upDone := make(chan error, 1)
	go func() { upDone <- sendStdin(conn, nc, stdin) }()

	downErr := copyDown(stdout, nc)
	select {
	case upErr := <-upDone:
		// stdin ended first and the close handshake ran; downErr is how it ended.
		_ = upErr
	default:
		if d, ok := stdin.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Now()) == nil {
			<-upDone
		}
	}
	if downErr != nil {
		return &Error{URL: target, Cause: describeStreamError(downErr), Err: downErr}
	}
	return nil
}

// sendStdin sends stdin as binary messages; at its end, a normal close (the WebSocket
// closing handshake) tells the server nothing more is coming.
func sendStdin(conn *websocket.Conn, nc net.Conn, stdin io.Reader) error {
	buf := make([]byte, chunk)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if _, werr := nc.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return conn.Close(websocket.StatusNormalClosure, "")
		}
		if err != nil {
			return err
		}
	}
}

// copyDown writes what the server sends to stdout until the connection ends; a normal close,
// going-away, or the end of the stream is success.
func copyDown(stdout io.Writer, nc net.Conn) error {
	_, err := io.Copy(stdout, nc)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return nil
	}
	return err
}

func dial(ctx context.Context, opts Options, u *url.URL) (*websocket.Conn, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CACertFile != "" {
		pemBytes, err := os.ReadFile(opts.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("reading --ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", opts.CACertFile)
		}
		tlsConf.RootCAs = pool
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	timeout := opts.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	transport := &http.Transport{
		Proxy:               proxy,
		TLSClientConfig:     tlsConf,
		TLSHandshakeTimeout: timeout,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:   false,
	}
	defer transport.CloseIdleConnections()
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{
		HTTPClient:      &http.Client{Transport: transport},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &statusError{code: resp.StatusCode, status: resp.Status, body: firstLine(resp.Body)}
		}
		return nil, err
	}
	return conn, nil
}

// statusError is an HTTP answer other than 101 Switching Protocols.
type statusError struct {
	code         int
	status, body string
}

func (e *statusError) Error() string {
	msg := "HTTP " + e.status + " instead of a WebSocket upgrade"
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

func firstLine(r io.Reader) string {
	if r == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	line, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	return strings.Map(printable, string(bytes.TrimSpace(line)))
}

func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

// describeDialError words a dial failure as its cause, most specific first.
func describeDialError(err error) string {
	var se *statusError
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &se):
		switch se.code {
		case http.StatusNotFound:
			return se.Error() + " (no route or wrong path: check the URL)"
		case http.StatusBadGateway, http.StatusServiceUnavailable:
			return se.Error() + " (the router has no healthy backend for this route)"
		}
		return se.Error()
	case errors.As(err, &unknown):
		return "TLS: certificate signed by unknown authority (use --ca-cert FILE for a private CA)"
	case errors.As(err, &hostErr):
		return "TLS: " + hostErr.Error()
	case errors.As(err, &invalid):
		return "TLS: " + invalid.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out connecting (TLS handshake or WebSocket upgrade)"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &opErr) && opErr.Op == "dial":
		var sysErr *os.SyscallError
		if errors.As(opErr.Err, &sysErr) {
			return "cannot connect: " + sysErr.Err.Error()
		}
		return "cannot connect: " + opErr.Err.Error()
	case errors.As(err, &opErr):
		return opErr.Op + ": " + opErr.Err.Error()
	}
	return err.Error()
}

// describeStreamError words how an established connection failed.
func describeStreamError(err error) string {
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		reason := ""
		if errors.As(err, &ce) && ce.Reason != "" {
			reason = ": " + ce.Reason
		}
		return fmt.Sprintf("the server closed the WebSocket with status %d (%s)%s", int(code), code, reason)
	}
	return "connection lost: " + err.Error()
}
