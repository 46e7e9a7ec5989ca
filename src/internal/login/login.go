// Package login is the one place a login to the ssh-proxy is decided. It parses the SSH user
// name, runs the scheme's check (Cloud Foundry: UAA one-time code and the Cloud Controller's
// ssh_access; diego: the shared secret; static targets: public key or the shared secret), finds
// the instance (BBS or the static target), connects to its sshd, and returns a typed Grant.
// Every refusal is a *Refusal from one table (reasons.go): the user's wording, its blame and
// where the user sees it. Nothing the client sends is trusted after the grant.
package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
)

// DefaultDialTimeout bounds the backend connect when Login.DialTimeout is zero.
const DefaultDialTimeout = 10 * time.Second

// Resolver finds an instance's sshd (target.BBSResolver satisfies it).
type Resolver interface {
	Resolve(ctx context.Context, processGUID string, index int) (target.Target, error)
}

// Login decides logins. A nil CF, Diego or Static disables that scheme.
type Login struct {
	CF     *CF
	Diego  *Diego
	Static *Static
	// Resolver finds cf and diego instances.
	Resolver Resolver
	// DialTimeout bounds the backend connect (default DefaultDialTimeout).
	DialTimeout time.Duration
	Logger      *slog.Logger
	// Metrics, when set, observes each backend connect.
	Metrics *metrics.Metrics
}

// Password decides a password login (a one-time code or the diego credentials). An error is a
// *Refusal shown at authentication; a permitted user always gets a Grant, with Backend or with
// the Refusal to show on channel opens.
func (l *Login) Password(ctx context.Context, user string, password []byte) (*Grant, error) {
	g, err := l.identify(ctx, user, password)
	if err != nil {
		return nil, err
	}
	g.SSHUser = user
	l.reach(ctx, g)
	return g, nil
}

func (l *Login) identify(ctx context.Context, user string, password []byte) (*Grant, error) {
	if l.CF == nil && l.Diego == nil && l.Static == nil {
		return nil, refuse(ReasonNoScheme, errors.New("enable_cf_auth and enable_diego_auth are false and there are no static targets"))
	}
	if l.Static != nil && IsStaticUsername(user) {
		return l.Static.password(user, password)
	}
	u, err := ParseUsername(user)
	if err != nil {
		return nil, refuse(ReasonBadUsername, err)
	}
	switch {
	case l.Resolver == nil:
	case u.Scheme == SchemeCF && l.CF != nil:
		return l.CF.authenticate(ctx, u, password)
	case u.Scheme == SchemeDiego && l.Diego != nil:
		return l.Diego.authenticate(u, password)
	}
	return nil, refuse(ReasonSchemeDisabled, fmt.Errorf("scheme %q disabled", u.Scheme))
}

// KeysEnabled reports whether public-key logins exist (static targets).
func (l *Login) KeysEnabled() bool { return l.Static != nil }

// OfferKey only answers whether a key the client offers would be acceptable (the client may
// not hold it); it grants nothing.
func (l *Login) OfferKey(user string, key ssh.PublicKey) error {
	if l.Static == nil {
		return refuse(ReasonSchemeDisabled, errors.New("public-key logins are off"))
	}
	return l.Static.offeredKey(user, key)
}

// PublicKey decides a public-key login once the client has signed with key.
func (l *Login) PublicKey(ctx context.Context, user string, key ssh.PublicKey) (*Grant, error) {
	if l.Static == nil {
		return nil, refuse(ReasonSchemeDisabled, errors.New("public-key logins are off"))
	}
	g, err := l.Static.verifiedKey(user, key)
	if err != nil {
		return nil, err
	}
	g.SSHUser = user
	l.reach(ctx, g)
	return g, nil
}

// reach finds the granted instance and connects to its sshd, filling g.Backend or g.Refusal.
func (l *Login) reach(ctx context.Context, g *Grant) {
	if g.Scheme != SchemeStatic {
		t, err := l.Resolver.Resolve(ctx, g.ProcessGUID, g.Index)
		if err != nil {
			g.Refusal = l.wordTarget(g, err)
			return
		}
		g.target = t
	}
	g.InstanceGUID, g.LogTags = g.target.InstanceGUID, g.target.LogTags
	timeout := l.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	started := time.Now()
	b, err := relay.Connect(dctx, g.target, l.Logger)
	l.Metrics.Dial(time.Since(started), err)
	if err != nil {
		g.Refusal = wordConnect(err, timeout)
		return
	}
	g.Backend = b
}

// appName names the app in a refusal: its name when Diego knows it, else its guid.
func appName(g *Grant, known string) string {
	switch {
	case known != "":
		return known
	case g.AppGUID != "":
		return g.AppGUID
	}
	return g.ProcessGUID
}

// wordTarget words what the resolver reported.
func (l *Login) wordTarget(g *Grant, err error) *Refusal {
	var ie *target.InstanceError
	switch {
	case errors.As(err, &ie):
		if ie.Missing() {
			return refuse(ReasonNoSuchInstance, err, "index", strconv.Itoa(ie.Index),
				"app", appName(g, ie.AppName), "instances", strconv.Itoa(ie.Instances))
		}
		state := "not running"
		switch ie.State {
		case bbs.StateCrashed:
			state = "CRASHED"
		case bbs.StateUnclaimed, bbs.StateClaimed:
			state = "STARTING"
		}
		return refuse(ReasonNotRunning, err, "index", strconv.Itoa(ie.Index), "state", state)
	case errors.Is(err, target.ErrProcessNotFound):
		return refuse(ReasonProcessNotFound, err)
	case errors.Is(err, target.ErrNoSSHRoute):
		return refuse(ReasonNoSSHRoute, err)
	case errors.Is(err, target.ErrNoTLSPort):
		return refuse(ReasonBackendTLS, err)
	}
	return refuse(ReasonBBSUnavailable, err)
}

// wordConnect words what relay.Connect reported.
func wordConnect(err error, timeout time.Duration) *Refusal {
	var de *relay.DialError
	var he *relay.HandshakeError
	switch {
	case errors.Is(err, relay.ErrHostKeyMismatch):
		return refuse(ReasonHostKeyMismatch, err)
	case errors.Is(err, relay.ErrAuthRefused):
		return refuse(ReasonBackendAuth, err)
	case errors.Is(err, relay.ErrBadTarget):
		return refuse(ReasonNoSSHRoute, err)
	case errors.As(err, &de) && de.Timeout, errors.As(err, &he) && he.Timeout:
		return refuse(ReasonBackendTimeout, err, "timeout", timeout.String())
	case errors.As(err, &de) && de.TLS:
		return refuse(ReasonBackendTLS, err)
	}
	return refuse(ReasonBackendDown, err)
}
