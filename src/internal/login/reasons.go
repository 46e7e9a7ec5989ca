package login

import (
	"errors"
	"strings"
)

// Blame says whose fault a refusal is. It decides penalties: only the client's faults count
// against its source address; a platform fault (an outage, a misconfiguration, an instance that
// is down) never does, however often it repeats.
type Blame int

// The two blames. The zero Blame is neither and is treated as the platform's (never penalised).
const (
	BlameClient Blame = iota + 1
	BlamePlatform
)

func (b Blame) String() string {
	switch b {
	case BlameClient:
		return "client"
	case BlamePlatform:
		return "platform"
	}
	return "unknown"
}

// Where says where a refusal reaches the user.
type Where int

const (
	// AtAuthentication: authentication is refused; the reason is the banner (OpenSSH prints it,
	// the cf CLI shows its generic "not authorized" line).
	AtAuthentication Where = iota + 1
	// AtChannelOpen: the user was permitted but the instance cannot be reached. Authentication
	// succeeds, each channel open is rejected with the reason (the cf CLI prints "SSH session
	// allocation failed: ... connect failed (\"<reason>\")", OpenSSH "channel 0: open failed:
	// connect failed: <reason>"), global requests are refused, and the connection is closed.
	AtChannelOpen
)

func (w Where) String() string {
	switch w {
	case AtAuthentication:
		return "authentication"
	case AtChannelOpen:
		return "channel-open"
	}
	return "unknown"
}

// Reason is one entry of the refusal table: a stable code (log attribute, metric label, audit
// field), the user's one-line wording (with {placeholders} filled per refusal), its blame and
// where the user sees it. Reasons exist only as the package's declarations below: every one is
// declared with a blame (see reason), and docs/refusals.md lists each (a test compares them).
type Reason struct {
	code  string
	text  string
	blame Blame
	where Where
}

// Code is the reason's stable identifier.
func (r *Reason) Code() string { return r.code }

// Text is the wording with its {placeholders}.
func (r *Reason) Text() string { return r.text }

// Blame is whose fault it is.
func (r *Reason) Blame() Blame { return r.blame }

// Where is where the user sees it.
func (r *Reason) Where() Where { return r.where }

var all []*Reason

// reason declares a table entry; blame and where are part of the declaration.
func reason(code string, blame Blame, where Where, text string) *Reason {
	r := &Reason{code: code, text: text, blame: blame, where: where}
	all = append(all, r)
	return r
}

// Reasons lists every reason, in declaration order.
func Reasons() []*Reason { return append([]*Reason(nil), all...) }

// The refusal table. Identity and permission are decided at authentication; what goes wrong with
// the instance once the user is permitted is reported on each channel open.
var (
	ReasonBadUsername       = reason("bad-username", BlameClient, AtAuthentication, "invalid user name: use cf:<app-guid>/<index>")
	ReasonSchemeDisabled    = reason("scheme-disabled", BlameClient, AtAuthentication, "this authentication scheme is not enabled")
	ReasonNoScheme          = reason("no-scheme", BlamePlatform, AtAuthentication, "logins are disabled on this proxy (no authentication scheme is enabled)")
	ReasonInvalidCode       = reason("invalid-code", BlameClient, AtAuthentication, "invalid or expired one-time code (run 'cf ssh-code' for a new one)")
	ReasonInvalidCredential = reason("invalid-credential", BlameClient, AtAuthentication, "invalid credentials")
	ReasonUnknownTarget     = reason("unknown-target", BlameClient, AtAuthentication, "unknown target or instance index")
	ReasonKeyNotAuthorized  = reason("key-not-authorized", BlameClient, AtAuthentication, "public key not authorized for this target")
	// The Cloud Controller's answers to GET /internal/apps/<guid>/ssh_access/<index>.
	ReasonNotPermitted    = reason("not-permitted", BlameClient, AtAuthentication, "not permitted to SSH into this app")
	ReasonNoSuchApp       = reason("no-such-app", BlameClient, AtAuthentication, "no such app (check the app guid)")
	ReasonSSHDisabled     = reason("ssh-disabled", BlameClient, AtAuthentication, "SSH is disabled for this app, its space or the platform")
	ReasonTokenRejected   = reason("token-rejected", BlamePlatform, AtAuthentication, "not permitted: Cloud Controller did not accept the UAA token (platform)")
	ReasonCCMisconfigured = reason("cc-misconfigured", BlamePlatform, AtAuthentication, "Cloud Controller refused the proxy's request (platform configuration)")
	ReasonUAAUnavailable  = reason("uaa-unavailable", BlamePlatform, AtAuthentication, "UAA unavailable")
	ReasonCCUnavailable   = reason("cc-unavailable", BlamePlatform, AtAuthentication, "Cloud Controller unavailable")
	// The user is permitted; the instance cannot be reached.
	ReasonProcessNotFound = reason("process-not-found", BlameClient, AtChannelOpen, "no such process in Diego (app stopped, or wrong process guid)")
	ReasonNoSSHRoute      = reason("no-ssh-route", BlamePlatform, AtChannelOpen, "the app has no usable SSH route in Diego (enable SSH, then restart the app)")
	ReasonNoSuchInstance  = reason("no-such-instance", BlameClient, AtChannelOpen, "instance {index} of app {app} does not exist ({instances} instances)")
	ReasonNotRunning      = reason("instance-not-running", BlamePlatform, AtChannelOpen, "instance {index} is {state}")
	ReasonBBSUnavailable  = reason("bbs-unavailable", BlamePlatform, AtChannelOpen, "BBS unavailable")
	ReasonBackendTimeout  = reason("backend-timeout", BlamePlatform, AtChannelOpen, "the instance's sshd did not answer within {timeout}")
	ReasonBackendDown     = reason("backend-unreachable", BlamePlatform, AtChannelOpen, "cannot reach the instance's sshd")
	ReasonHostKeyMismatch = reason("host-key-mismatch", BlamePlatform, AtChannelOpen, "the instance's host key does not match the fingerprint Cloud Controller recorded")
	ReasonBackendTLS      = reason("backend-tls", BlamePlatform, AtChannelOpen, "TLS to the instance failed")
	ReasonBackendAuth     = reason("backend-auth", BlamePlatform, AtChannelOpen, "the instance's sshd refused the proxy's credentials")
)

// Refusal is a login that was not granted (or a grant whose instance cannot be reached): the
// reason, its wording for this case, and the internal cause (for logs only).
type Refusal struct {
	Reason *Reason
	// Message is the one line shown to the user (the reason's text, placeholders filled).
	Message string
	Err     error
}

func (r *Refusal) Error() string {
	if r.Err == nil {
		return r.Message
	}
	return r.Message + ": " + r.Err.Error()
}

// Unwrap returns the cause.
func (r *Refusal) Unwrap() error { return r.Err }

// Blame is the reason's blame (the platform's when there is no reason).
func (r *Refusal) Blame() Blame {
	if r == nil || r.Reason == nil || r.Reason.blame != BlameClient {
		return BlamePlatform
	}
	return BlameClient
}

// Code is the reason's code ("" without one).
func (r *Refusal) Code() string {
	if r == nil || r.Reason == nil {
		return ""
	}
	return r.Reason.code
}

// refuse words a refusal; args are placeholder/value pairs ("index", "3", ...).
func refuse(r *Reason, err error, args ...string) *Refusal {
	msg := r.text
	for i := 0; i+1 < len(args); i += 2 {
		msg = strings.ReplaceAll(msg, "{"+args[i]+"}", args[i+1])
	}
	return &Refusal{Reason: r, Message: msg, Err: err}
}

// RefusalOf returns the refusal err carries, or a generic platform refusal for any other error.
func RefusalOf(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return &Refusal{Message: "authentication failed", Err: err}
}
