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
	// The Cloud Controller's answers to the ssh_access check (GET /internal/apps/<guid>/ssh_access/<index>).
	ReasonNotPermitted    = "not permitted to SSH into this app"                                      // 403: the user lacks the role
	ReasonNoSuchApp       = "no such app (check the app guid)"                                        // 404 CF-AppNotFound
	ReasonSSHDisabled     = "SSH is disabled for this app, its space or the platform"                 // 400 CF-InvalidRequest
	ReasonTokenRejected   = "not permitted: Cloud Controller did not accept the UAA token (platform)" // 401: UAA and CC disagree
	ReasonCCMisconfigured = "Cloud Controller refused the proxy's request (platform configuration)"   // other 4xx: wrong URL or port
	// ReasonAppNotFound: the process guid is unknown to the BBS (diego: a wrong guid; cf: app stopped).
	ReasonAppNotFound     = "no such process in Diego (app stopped, or wrong process guid)"
	ReasonUAAUnavailable  = "UAA unavailable"
	ReasonCCUnavailable   = "Cloud Controller unavailable"
	ReasonBBSUnavailable  = "BBS unavailable"
	ReasonNotRunning      = "instance not running"
	ReasonNoSSHRoute      = "app instance has no SSH route"
	ReasonBackendDown     = "cannot reach the SSH daemon in the app instance"
	ReasonHostKeyMismatch = "app instance host key does not match its fingerprint"
	ReasonBackendTLS      = "TLS to the app instance failed"
	ReasonBackendAuth     = "the SSH daemon in the app instance refused the proxy"
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
