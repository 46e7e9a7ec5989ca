package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/metrics"
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

// KeyAuthenticator decides public-key logins (auth.Static satisfies it): OfferedKey may only
// say whether a key would be acceptable; VerifiedKey grants, after the client signed.
type KeyAuthenticator interface {
	OfferedKey(user string, key ssh.PublicKey) (*ssh.Permissions, error)
	VerifiedKey(user string, key ssh.PublicKey) (*ssh.Permissions, error)
}

// StaticResolver finds a static target's instance (target.Static satisfies it).
type StaticResolver interface {
	Resolve(name string, index int) (target.Target, error)
}

// ProxyGate is the ssh-proxy's Gate: authenticate, resolve the target in the BBS, connect to
// the instance's sshd. Doing all three before authentication succeeds lets every failure be
// shown to the user as a one-line reason.
type ProxyGate struct {
	Auth     Authenticator
	Resolver Resolver
	// Keys, when not nil, admits public-key logins (static targets).
	Keys KeyAuthenticator
	// Static resolves permissions of scheme auth.SchemeStatic.
	Static StaticResolver
	// DialTimeout bounds the backend connect (default 10s).
	DialTimeout time.Duration
	Logger      *slog.Logger
	// Metrics, when set, observes each backend connect (server.New fills it from Config).
	Metrics *metrics.Metrics
}

// Admit implements Gate.
func (g *ProxyGate) Admit(ctx context.Context, meta ssh.ConnMetadata, password []byte) (*ssh.Permissions, *relay.Backend, error) {
	perms, err := g.Auth.Authenticate(ctx, meta.User(), password)
	if err != nil {
		return nil, nil, err
	}
	return g.connect(ctx, perms)
}

// KeysEnabled implements KeyGate.
func (g *ProxyGate) KeysEnabled() bool { return g.Keys != nil }

// OfferKey implements KeyGate.
func (g *ProxyGate) OfferKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if g.Keys == nil {
		return nil, auth.Refuse(auth.ReasonSchemeDisabled, errors.New("public-key logins are off"))
	}
	return g.Keys.OfferedKey(meta.User(), key)
}

// AdmitKey implements KeyGate; the client has proven it holds key.
func (g *ProxyGate) AdmitKey(ctx context.Context, meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, *relay.Backend, error) {
	if g.Keys == nil {
		return nil, nil, auth.Refuse(auth.ReasonSchemeDisabled, errors.New("public-key logins are off"))
	}
	perms, err := g.Keys.VerifiedKey(meta.User(), key)
	if err != nil {
		return nil, nil, err
	}
	return g.connect(ctx, perms)
}

// connect resolves what perms grant and connects to that instance's sshd.
func (g *ProxyGate) connect(ctx context.Context, perms *ssh.Permissions) (*ssh.Permissions, *relay.Backend, error) {
	t, err := auth.TargetOf(perms)
	if err != nil {
		return nil, nil, auth.Refuse("authentication failed", err)
	}
	var tgt target.Target
	switch {
	case t.Scheme == auth.SchemeStatic && g.Static != nil:
		tgt, err = g.Static.Resolve(t.ProcessGUID, t.Index)
		if err != nil {
			return nil, nil, auth.Refuse(auth.ReasonUnknownTarget, err)
		}
	case t.Scheme != auth.SchemeStatic && g.Resolver != nil:
		tgt, err = g.Resolver.Resolve(ctx, t.ProcessGUID, t.Index)
		if err != nil {
			var r *auth.Refusal
			if !errors.As(err, &r) {
				err = auth.Refuse(auth.ReasonBBSUnavailable, err)
			}
			return nil, nil, err
		}
	default:
		return nil, nil, auth.Refuse(auth.ReasonSchemeDisabled, fmt.Errorf("no target source for scheme %q", t.Scheme))
	}
	timeout := g.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := time.Now()
	b, err := relay.Connect(dctx, tgt, g.Logger)
	g.Metrics.Dial(time.Since(started), err)
	if err != nil {
		return nil, nil, err
	}
	perms.Extensions[ExtInstanceGUID] = tgt.InstanceGUID
	target.SetLogTags(perms, tgt.LogTags)
	return perms, b, nil
}
