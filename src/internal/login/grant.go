package login

import (
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
)

// Grant is a decided login: who, what they may reach, and either the backend connection or
// (when the user is permitted but the instance cannot be reached) the refusal to show on each
// channel open. It travels from the authentication callback to the session in
// ssh.Permissions.ExtraData; nothing is re-parsed from strings.
type Grant struct {
	Scheme Scheme
	// User is the UAA user name (cf), "diego", or how a static login proved itself.
	User   string
	UserID string // UAA user guid (cf)
	// SSHUser is the SSH user name as the client sent it.
	SSHUser string

	AppGUID      string // cf only
	ProcessGUID  string // the target's name for static targets
	Index        int
	InstanceGUID string
	// LogTags name the app's log stream (nil when there is none: no Loggregator lines).
	LogTags map[string]string

	// Backend is the connection to the instance's sshd; nil exactly when Refusal is set.
	Backend *relay.Backend
	// Refusal, when set, is shown on every channel open (Where() == AtChannelOpen).
	Refusal *Refusal

	target target.Target
}

type grantKey struct{}

// Permissions carries g for ssh.ServerConfig's callbacks.
func (g *Grant) Permissions() *ssh.Permissions {
	return &ssh.Permissions{ExtraData: map[any]any{grantKey{}: g}}
}

// GrantOf returns the grant Permissions carried (nil when none).
func GrantOf(p *ssh.Permissions) *Grant {
	if p == nil {
		return nil
	}
	g, _ := p.ExtraData[grantKey{}].(*Grant)
	return g
}

// BackendTLS reports whether the backend connection uses TLS.
func (g *Grant) BackendTLS() bool { return g.Backend != nil && g.Backend.TLS }
