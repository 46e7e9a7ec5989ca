package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/uaa"
)

// Keys of ssh.Permissions.Extensions set by a successful authentication.
const (
	ExtScheme      = "app-ssh-scheme"       // "cf" or "diego"
	ExtAppGUID     = "app-ssh-app-guid"     // cf only
	ExtProcessGUID = "app-ssh-process-guid" // always
	ExtIndex       = "app-ssh-index"        // decimal
	ExtUser        = "app-ssh-user"         // UAA user name (cf) or "diego"
	ExtUserID      = "app-ssh-user-id"      // UAA user guid (cf)
)

// CodeExchanger trades a one-time code for a UAA token (uaa.Client satisfies it).
type CodeExchanger interface {
	ExchangeCode(ctx context.Context, code string) (uaa.Token, error)
}

// AccessChecker asks the Cloud Controller whether the token's user may SSH into the app
// instance, returning the process guid. Its errors wrap one of the Err* answers below when the
// Cloud Controller answered; any other error means the Cloud Controller could not answer.
type AccessChecker interface {
	SSHAccess(ctx context.Context, accessToken, appGUID string, index int) (processGUID string, err error)
}

// What the Cloud Controller answered, as AccessChecker implementations wrap it. The first three
// are the client's doing (its user, its app guid); the last two are the platform's.
var (
	ErrNotPermitted    = errors.New("the user may not SSH into the app")                            // 403
	ErrNoSuchApp       = errors.New("no such app")                                                  // 404 CF-AppNotFound
	ErrSSHDisabled     = errors.New("SSH is disabled for the app, space or platform")               // 400 CF-InvalidRequest
	ErrTokenRejected   = errors.New("the UAA token was not accepted")                               // 401
	ErrCCMisconfigured = errors.New("the request was refused before reaching the ssh_access check") // other 4xx
)

// ccReasons maps the Cloud Controller's answers to the reason shown to the user.
var ccReasons = []struct {
	err    error
	reason string
}{
	{ErrNotPermitted, ReasonNotPermitted},
	{ErrNoSuchApp, ReasonNoSuchApp},
	{ErrSSHDisabled, ReasonSSHDisabled},
	{ErrTokenRejected, ReasonTokenRejected},
	{ErrCCMisconfigured, ReasonCCMisconfigured},
}

// CF authenticates "cf:<app-guid>/<index>" with a UAA one-time code.
type CF struct {
	UAA CodeExchanger
	CC  AccessChecker
	// Timeout bounds each of the two calls (0 = only the caller's context).
	Timeout time.Duration
}

func (a *CF) authenticate(ctx context.Context, u Username, code []byte) (*ssh.Permissions, error) {
	if len(code) == 0 {
		return nil, Refuse(ReasonInvalidCode, errors.New("empty code"))
	}
	cctx, cancel := withTimeout(ctx, a.Timeout)
	tok, err := a.UAA.ExchangeCode(cctx, string(code))
	cancel()
	if err != nil {
		if errors.Is(err, uaa.ErrInvalidCode) {
			return nil, Refuse(ReasonInvalidCode, err)
		}
		return nil, Refuse(ReasonUAAUnavailable, err)
	}
	cctx, cancel = withTimeout(ctx, a.Timeout)
	pguid, err := a.CC.SSHAccess(cctx, tok.AccessToken, u.GUID, u.Index)
	cancel()
	if err != nil {
		for _, m := range ccReasons {
			if errors.Is(err, m.err) {
				return nil, Refuse(m.reason, err)
			}
		}
		return nil, Refuse(ReasonCCUnavailable, err)
	}
	if pguid == "" {
		return nil, Refuse(ReasonCCUnavailable, errors.New("cloud controller returned an empty process guid"))
	}
	return &ssh.Permissions{Extensions: map[string]string{
		ExtScheme:      string(SchemeCF),
		ExtAppGUID:     u.GUID,
		ExtProcessGUID: pguid,
		ExtIndex:       strconv.Itoa(u.Index),
		ExtUser:        tok.UserName,
		ExtUserID:      tok.Subject,
	}}, nil
}

// Diego authenticates "diego:<process-guid>/<index>" with the shared diego credentials.
type Diego struct {
	Credentials []byte
}

func (a *Diego) authenticate(u Username, password []byte) (*ssh.Permissions, error) {
	// Compare fixed-length digests so neither content nor length leaks through timing.
	want := sha256.Sum256(a.Credentials)
	got := sha256.Sum256(password)
	if len(a.Credentials) == 0 || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, Refuse(ReasonInvalidCredential, errors.New("diego credentials mismatch"))
	}
	return &ssh.Permissions{Extensions: map[string]string{
		ExtScheme:      string(SchemeDiego),
		ExtProcessGUID: u.GUID,
		ExtIndex:       strconv.Itoa(u.Index),
		ExtUser:        "diego",
	}}, nil
}

// Authenticator dispatches on the user name's scheme. A nil CF, Diego or Static disables that
// scheme; Static takes the user names without a scheme ("<target>/<index>").
type Authenticator struct {
	CF     *CF
	Diego  *Diego
	Static *Static
}

// Authenticate checks the user name and password (a one-time code or the diego credentials).
// Every error is a *Refusal.
func (a *Authenticator) Authenticate(ctx context.Context, user string, password []byte) (*ssh.Permissions, error) {
	if a.CF == nil && a.Diego == nil && a.Static == nil {
		return nil, Refuse(ReasonNoScheme, errors.New("enable_cf_auth and enable_diego_auth are false and there are no static targets"))
	}
	if a.Static != nil && IsStaticUsername(user) {
		return a.Static.Password(user, password)
	}
	u, err := ParseUsername(user)
	if err != nil {
		return nil, Refuse(ReasonBadUsername, err)
	}
	switch {
	case u.Scheme == SchemeCF && a.CF != nil:
		return a.CF.authenticate(ctx, u, password)
	case u.Scheme == SchemeDiego && a.Diego != nil:
		return a.Diego.authenticate(u, password)
	}
	return nil, Refuse(ReasonSchemeDisabled, fmt.Errorf("scheme %q disabled", u.Scheme))
}

// Target is what the permissions say the session may reach.
type Target struct {
	Scheme      Scheme
	AppGUID     string
	ProcessGUID string
	Index       int
	User        string
}

// TargetOf reads back what Authenticate recorded.
func TargetOf(p *ssh.Permissions) (Target, error) {
	if p == nil || p.Extensions == nil {
		return Target{}, errors.New("no permissions")
	}
	ext := p.Extensions
	idx, err := strconv.Atoi(ext[ExtIndex])
	if err != nil || ext[ExtProcessGUID] == "" {
		return Target{}, errors.New("permissions carry no target")
	}
	return Target{
		Scheme: Scheme(ext[ExtScheme]), AppGUID: ext[ExtAppGUID], ProcessGUID: ext[ExtProcessGUID],
		Index: idx, User: ext[ExtUser],
	}, nil
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
