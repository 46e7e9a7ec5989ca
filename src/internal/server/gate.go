package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
)

// ExtInstanceGUID is the ssh.Permissions extension naming the instance the session reached.
const ExtInstanceGUID = "app-ssh-instance-guid"

// Authenticator checks a user name and password (auth.Authenticator satisfies it).
type Authenticator interface {
	Authenticate(ctx context.Context, user string, password []byte) (*ssh.Permissions, error)
}

// Resolver finds the instance's sshd (target.BBSResolver satisfies it).
type Resolver interface {
	Resolve(ctx context.Context, processGUID string, index int) (target.Target, error)
}

// ProxyGate is the ssh-proxy's Gate: authenticate, resolve the target in the BBS, connect to
// the instance's sshd. Doing all three before authentication succeeds lets every failure be
// shown to the user as a one-line reason.
type ProxyGate struct {
	Auth     Authenticator
	Resolver Resolver
	// DialTimeout bounds the backend connect (default 10s).
	DialTimeout time.Duration
	Logger      *slog.Logger
}

// Admit implements Gate.
func (g *ProxyGate) Admit(ctx context.Context, meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, *relay.Backend, error) {
	perms, err := g.Auth.Authenticate(ctx, meta.User(), password)
	if err != nil {
		return nil, nil, err
	}
	t, err := auth.TargetOf(perms)
	if err != nil {
		return nil, nil, auth.Refuse("authentication failed", err)
	}
	tgt, err := g.Resolver.Resolve(ctx, t.ProcessGUID, t.Index)
	if err != nil {
		var r *auth.Refusal
		if !errors.As(err, &r) {
			err = auth.Refuse(auth.ReasonBBSUnavailable, err)
		}
		return nil, nil, err
	}
	timeout := g.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, err := relay.Connect(dctx, tgt, g.Logger)
	if err != nil {
		return nil, nil, err
	}
	perms.Extensions[ExtInstanceGUID] = tgt.InstanceGUID
	return perms, b, nil
}
