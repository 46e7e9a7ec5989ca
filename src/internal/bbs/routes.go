package bbs

import (
	"encoding/json"
	"errors"
	"fmt"
)

// DiegoSSHRouteKey is the DesiredLRP routes key the Cloud Controller puts the SSH route under.
const DiegoSSHRouteKey = "diego-ssh"

// ErrNoSSHRoute means the desired LRP has no diego-ssh route: SSH was not enabled when the app
// was (re)started.
var ErrNoSSHRoute = errors.New("desired LRP has no diego-ssh route")

// SSHRoute is the JSON the Cloud Controller stores under routes["diego-ssh"] (diego-ssh's
// routes.SSHRoute): the one model of that route in app-ssh. PrivateKey and Password are secrets: never log them.
type SSHRoute struct {
	ContainerPort      uint32 `json:"container_port"`
	HostFingerprint    string `json:"host_fingerprint,omitempty"`
	Host256Fingerprint string `json:"host_256_fingerprint,omitempty"`
	User               string `json:"user,omitempty"`
	Password           string `json:"password,omitempty"`
	PrivateKey         string `json:"private_key,omitempty"`
}

// SSHRoute decodes routes["diego-ssh"]. It returns ErrNoSSHRoute when the route is absent.
func (d *DesiredLRP) SSHRoute() (SSHRoute, error) {
	raw, ok := d.Routes[DiegoSSHRouteKey]
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return SSHRoute{}, ErrNoSSHRoute
	}
	var r SSHRoute
	if err := json.Unmarshal(raw, &r); err != nil {
		// The JSON holds a private key; do not echo it.
		return SSHRoute{}, errors.New("diego-ssh route is not valid JSON")
	}
	if r.ContainerPort == 0 {
		return SSHRoute{}, fmt.Errorf("diego-ssh route has no container_port")
	}
	return r, nil
}

// Fingerprint is the pinned host-key fingerprint: host_256_fingerprint when present,
// otherwise host_fingerprint.
func (r SSHRoute) Fingerprint() string {
	if r.Host256Fingerprint != "" {
		return r.Host256Fingerprint
	}
	return r.HostFingerprint
}
