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

	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
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

var errHostKeyMismatch = errors.New("host key does not match the pinned fingerprint")

// Connect dials t and completes the SSH handshake. Errors are *auth.Refusal with a reason fit
// for the user. ctx bounds the whole connect (dial, TLS and SSH handshake).
func Connect(ctx context.Context, t target.Target, logger *slog.Logger) (*Backend, error) {
	fpText := t.Route.Fingerprint()
	if fpText == "" {
		return nil, auth.Refuse(auth.ReasonHostKeyMismatch, errors.New("route pins no host key fingerprint"))
	}
	fp, err := fingerprint.Parse(fpText)
	if err != nil {
		return nil, auth.Refuse(auth.ReasonHostKeyMismatch, fmt.Errorf("route fingerprint: %w", err))
	}
	methods, err := authMethods(t.Route)
	if err != nil {
		return nil, auth.Refuse(auth.ReasonBackendAuth, err)
	}

	conn, usedTLS, err := dial(ctx, t, logger)
	if err != nil {
		return nil, err
	}
	user := t.Route.User
	if user == "" {
		user = DefaultUser
	}
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: methods,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if !fp.Matches(key) {
				return errHostKeyMismatch
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
		case errors.Is(err, errHostKeyMismatch):
			return nil, auth.Refuse(auth.ReasonHostKeyMismatch, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, auth.Refuse(auth.ReasonBackendAuth, err)
		}
		return nil, auth.Refuse(auth.ReasonBackendDown, fmt.Errorf("ssh handshake with %s: %w", t.Address, err))
	}
	if interrupted {
		sc.Close()
		return nil, auth.Refuse(auth.ReasonBackendDown, ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return &Backend{Conn: sc, Chans: chans, Reqs: reqs, TLS: usedTLS}, nil
}

func authMethods(r target.Route) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if r.PrivateKey != "" {
		s, err := ssh.ParsePrivateKey([]byte(r.PrivateKey))
		if err != nil {
			return nil, errors.New("route private key cannot be parsed")
		}
		methods = append(methods, ssh.PublicKeys(s))
	}
	if r.Password != "" {
		methods = append(methods, ssh.Password(r.Password))
	}
	if len(methods) == 0 {
		methods = append(methods, ssh.Password(""))
	}
	return methods, nil
}

func dial(ctx context.Context, t target.Target, logger *slog.Logger) (net.Conn, bool, error) {
	var d net.Dialer
	if t.TLS == nil {
		c, err := d.DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return nil, false, auth.Refuse(auth.ReasonBackendDown, err)
		}
		return c, false, nil
	}
	td := tls.Dialer{NetDialer: &d, Config: t.TLS}
	c, err := td.DialContext(ctx, "tcp", t.Address)
	if err == nil {
		return c, true, nil
	}
	var opErr *net.OpError
	reason := auth.ReasonBackendTLS
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		reason = auth.ReasonBackendDown
	}
	if t.PlaintextAddress == "" {
		return nil, false, auth.Refuse(reason, fmt.Errorf("tls dial %s: %w", t.Address, err))
	}
	if logger != nil {
		logger.Warn("backend TLS failed; falling back to plaintext as allowed by backends_tls.allow_plaintext_fallback",
			"process_guid", t.ProcessGUID, "index", t.Index, "tls_address", t.Address,
			"plaintext_address", t.PlaintextAddress, "error", err.Error())
	}
	pc, perr := d.DialContext(ctx, "tcp", t.PlaintextAddress)
	if perr != nil {
		return nil, false, auth.Refuse(auth.ReasonBackendDown, fmt.Errorf("tls dial %s: %v; plaintext dial: %w", t.Address, err, perr))
	}
	return pc, false, nil
}
