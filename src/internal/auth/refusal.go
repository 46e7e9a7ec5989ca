package auth

import "errors"

// User-visible reasons for refusing a session. Each is one line, shown to the client and logged
// as the "reason" attribute; none ever contains a code, token, password or key.
const (
	ReasonBadUsername       = "invalid user name: use cf:<app-guid>/<index>"
	ReasonSchemeDisabled    = "this authentication scheme is not enabled"
	ReasonNoScheme          = "logins are disabled on this proxy (no authentication scheme is enabled)"
	ReasonInvalidCode       = "invalid or expired one-time code (run 'cf ssh-code' for a new one)"
	ReasonInvalidCredential = "invalid credentials"
	ReasonAppNotFound       = "app not found or SSH disabled"
	ReasonUAAUnavailable    = "UAA unavailable"
	ReasonCCUnavailable     = "Cloud Controller unavailable"
	ReasonBBSUnavailable    = "BBS unavailable"
	ReasonNotRunning        = "instance not running"
	ReasonNoSSHRoute        = "app instance has no SSH route"
	ReasonBackendDown       = "cannot reach the SSH daemon in the app instance"
	ReasonHostKeyMismatch   = "app instance host key does not match its fingerprint"
	ReasonBackendTLS        = "TLS to the app instance failed"
	ReasonBackendAuth       = "the SSH daemon in the app instance refused the proxy"
)

// Refusal is an error with a user-visible one-line reason and the internal cause (for logs).
type Refusal struct {
	Reason string
	Err    error
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return r.Reason
	}
	return r.Reason + ": " + r.Err.Error()
}

// Unwrap returns the cause.
func (r *Refusal) Unwrap() error { return r.Err }

// Refuse wraps err with a user-visible reason.
func Refuse(reason string, err error) error { return &Refusal{Reason: reason, Err: err} }

// ReasonOf is the user-visible reason carried by err, or a generic one.
func ReasonOf(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return "authentication failed"
}
