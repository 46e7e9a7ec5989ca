// Package relay connects to the sshd inside an app instance (pinning its host key) and relays
// an SSH connection to it: every channel and global request in both directions, with replies,
// exit-status/exit-signal, EOF and close.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/target"
)

// DefaultUser is the user name presented to the instance's sshd when the route names none
// (the sshd authenticates the proxy by key; the name is informational).
const DefaultUser = "vcap"

// Backend is an established SSH client connection to an instance's sshd, with the raw channel
// and request streams the relay forwards.
type Backend struct {
	Conn  ssh.Conn
	Chans <-chan ssh.NewChannel
	Reqs  <-chan *ssh.Request
	// TLS reports whether the transport is TLS.
	TLS bool
}

// Close closes the backend connection.
func (b *Backend) Close() error { return b.Conn.Close() }

// What Connect reports (plain errors; the login words them for the user).
var (
	// ErrHostKeyMismatch: the sshd's host key does not match the pinned fingerprint.
	ErrHostKeyMismatch = errors.New("host key does not match the pinned fingerprint")
	// ErrBadTarget: the target pins no host key.
	ErrBadTarget = errors.New("target cannot be used")
	// ErrAuthRefused: the sshd did not accept the proxy's credentials.
	ErrAuthRefused = errors.New("the sshd refused the proxy's credentials")
)

// DialError is a failed connect before the SSH handshake: TCP (TLS false) or the TLS
// handshake (TLS true). Timeout says the deadline ran out.
type DialError struct {
	Address string
	TLS     bool
	Timeout bool
	Err     error
}

func (e *DialError) Error() string {
	what := "dial"
	if e.TLS {
		what = "tls handshake"
	}
	return fmt.Sprintf("%s %s: %v", what, e.Address, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// HandshakeError is a failed SSH handshake (other than the two sentinels above). Timeout says
// the deadline ran out.
type HandshakeError struct {
	Address string
	Timeout bool
	Err     error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("ssh handshake with %s: %v", e.Address, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// Connect dials t and completes the SSH handshake. ctx bounds the whole connect (dial, TLS and
// SSH handshake). Errors are ErrHostKeyMismatch, ErrBadTarget, ErrAuthRefused (wrapped),
// *DialError or *HandshakeError.
func Connect(ctx context.Context, t target.Target, logger *slog.Logger) (*Backend, error) {
	if len(t.HostKey.Digest) == 0 {
		return nil, fmt.Errorf("%w: no host key fingerprint", ErrBadTarget)
	}
	fp, methods := t.HostKey, authMethods(t)

	conn, usedTLS, err := dial(ctx, t, logger)
	if err != nil {
		return nil, err
	}
	user := t.User
	if user == "" {
		user = DefaultUser
	}
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: methods,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if !fp.Matches(key) {
				return ErrHostKeyMismatch
			}
			return nil
		},
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, t.Address, cfg)
	interrupted := !stop()
	if err != nil {
		conn.Close()
		switch {
		case errors.Is(err, ErrHostKeyMismatch):
			return nil, ErrHostKeyMismatch
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%w: %w", ErrAuthRefused, err)
		}
		return nil, &HandshakeError{Address: t.Address, Timeout: interrupted || isTimeout(ctx, err), Err: err}
	}
	if interrupted {
		sc.Close()
		return nil, &HandshakeError{Address: t.Address, Timeout: true, Err: ctx.Err()}
	}
	_ = conn.SetDeadline(time.Time{})
	return &Backend{Conn: sc, Chans: chans, Reqs: reqs, TLS: usedTLS}, nil
}

func authMethods(r target.Target) []ssh.AuthMethod {
	var methods []ssh.AuthMethod
	if r.Signer != nil {
		methods = append(methods, ssh.PublicKeys(r.Signer))
	}
	if r.Password != "" {
		methods = append(methods, ssh.Password(r.Password))
	}
	if len(methods) == 0 {
		methods = append(methods, ssh.Password(""))
	}
	return methods
}

func dial(ctx context.Context, t target.Target, logger *slog.Logger) (net.Conn, bool, error) {
	var d net.Dialer
	if t.TLS == nil {
		c, err := d.DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return nil, false, &DialError{Address: t.Address, Timeout: isTimeout(ctx, err), Err: err}
		}
		return c, false, nil
	}
	td := tls.Dialer{NetDialer: &d, Config: t.TLS}
	c, err := td.DialContext(ctx, "tcp", t.Address)
	if err == nil {
		return c, true, nil
	}
	var opErr *net.OpError
	tlsFailed := !(errors.As(err, &opErr) && opErr.Op == "dial")
	if t.PlaintextAddress == "" {
		return nil, false, &DialError{Address: t.Address, TLS: tlsFailed, Timeout: isTimeout(ctx, err), Err: err}
	}
	if logger != nil {
		logger.Warn("backend TLS failed; falling back to plaintext as allowed by backends_tls.allow_plaintext_fallback",
			"process_guid", t.ProcessGUID, "index", t.Index, "tls_address", t.Address,
			"plaintext_address", t.PlaintextAddress, "error", err.Error())
	}
	pc, perr := d.DialContext(ctx, "tcp", t.PlaintextAddress)
	if perr != nil {
		return nil, false, &DialError{Address: t.PlaintextAddress, Timeout: isTimeout(ctx, perr),
			Err: fmt.Errorf("tls dial %s: %v; plaintext dial: %w", t.Address, err, perr)}
	}
	return pc, false, nil
}
