package login

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/app-ssh/app-ssh/internal/uaa"
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
	reason *Reason
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

func (a *CF) authenticate(ctx context.Context, u Username, code []byte) (*Grant, error) {
	if len(code) == 0 {
		return nil, refuse(ReasonInvalidCode, errors.New("empty code"))
	}
	cctx, cancel := withTimeout(ctx, a.Timeout)
	tok, err := a.UAA.ExchangeCode(cctx, string(code))
	cancel()
	if err != nil {
		if errors.Is(err, uaa.ErrInvalidCode) {
			return nil, refuse(ReasonInvalidCode, err)
		}
		return nil, refuse(ReasonUAAUnavailable, err)
	}
	cctx, cancel = withTimeout(ctx, a.Timeout)
	pguid, err := a.CC.SSHAccess(cctx, tok.AccessToken, u.GUID, u.Index)
	cancel()
	if err != nil {
		for _, m := range ccReasons {
			if errors.Is(err, m.err) {
				return nil, refuse(m.reason, err)
			}
		}
		return nil, refuse(ReasonCCUnavailable, err)
	}
	if pguid == "" {
		return nil, refuse(ReasonCCUnavailable, errors.New("cloud controller returned an empty process guid"))
	}
	return &Grant{Scheme: SchemeCF, AppGUID: u.GUID, ProcessGUID: pguid, Index: u.Index,
		User: tok.UserName, UserID: tok.Subject}, nil
}

// Diego authenticates "diego:<process-guid>/<index>" with the shared diego credentials.
type Diego struct {
	Credentials []byte
}

func (a *Diego) authenticate(u Username, password []byte) (*Grant, error) {
	// Compare fixed-length digests so neither content nor length leaks through timing.
	want := sha256.Sum256(a.Credentials)
	got := sha256.Sum256(password)
	if len(a.Credentials) == 0 || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, refuse(ReasonInvalidCredential, errors.New("diego credentials mismatch"))
	}
	return &Grant{Scheme: SchemeDiego, ProcessGUID: u.GUID, Index: u.Index, User: "diego"}, nil
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
