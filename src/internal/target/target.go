// Package target turns an authenticated permission (process guid + index) into the address,
// transport and credentials of the sshd inside that app instance, using the BBS.
package target

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// RouteKey is the desired LRP route under which Cloud Controller stores the SSH route.
const RouteKey = "diego-ssh"

// Route is the JSON Cloud Controller stores in the desired LRP's routes["diego-ssh"]
// (keys as in diego-ssh's routes.SSHRoute).
type Route struct {
	ContainerPort      uint32 `json:"container_port"`
	HostFingerprint    string `json:"host_fingerprint,omitempty"`
	Host256Fingerprint string `json:"host_256_fingerprint,omitempty"`
	User               string `json:"user,omitempty"`
	Password           string `json:"password,omitempty"`
	PrivateKey         string `json:"private_key,omitempty"`
}

// ParseRoute decodes the diego-ssh route JSON; unknown keys are ignored.
func ParseRoute(raw []byte) (Route, error) {
	var r Route
	if len(raw) == 0 {
		return r, errors.New("empty diego-ssh route")
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("diego-ssh route is not valid JSON: %w", err)
	}
	if r.ContainerPort == 0 {
		return r, errors.New("diego-ssh route has no container_port")
	}
	return r, nil
}

// Fingerprint is the pinned host-key fingerprint: host_256_fingerprint when present,
// otherwise host_fingerprint.
func (r Route) Fingerprint() string {
	if r.Host256Fingerprint != "" {
		return r.Host256Fingerprint
	}
	return r.HostFingerprint
}

// Target is where and how to reach one instance's sshd. It carries secrets (the route's
// private key and password): never log it; use Describe.
type Target struct {
	ProcessGUID  string
	Index        int
	InstanceGUID string
	// Address is host:port to dial.
	Address string
	// TLS, when not nil, wraps the connection (ServerName already set to the instance guid).
	TLS *tls.Config
	// PlaintextAddress is only set when TLS is on and the operator allowed a plaintext
	// fallback (backends_tls.allow_plaintext_fallback).
	PlaintextAddress string
	Route            Route
	// LogTags name the app's log stream for "cf logs" lines about this session: the desired
	// LRP's metric tags resolved for this instance, always with source_id and instance_id.
	// Nil when the target has no app identity (static targets, or a desired LRP with neither
	// a log_guid nor a source_id tag).
	LogTags map[string]string
}

// Describe is a log-safe summary.
func (t Target) Describe() string {
	mode := "plaintext"
	if t.TLS != nil {
		mode = "tls"
	}
	return fmt.Sprintf("%s/%d instance %s at %s (%s)", t.ProcessGUID, t.Index, t.InstanceGUID, t.Address, mode)
}

// ExtLogTags is the ssh.Permissions extension carrying Target.LogTags (as JSON) from the
// login to the session.
const ExtLogTags = "app-ssh-log-tags"

// SetLogTags records tags in perms (nothing when tags is nil).
func SetLogTags(perms *ssh.Permissions, tags map[string]string) {
	if tags == nil || perms == nil {
		return
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return // a map[string]string always marshals
	}
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[ExtLogTags] = string(b)
}

// LogTagsOf returns the tags SetLogTags recorded, or nil.
func LogTagsOf(perms *ssh.Permissions) map[string]string {
	if perms == nil || perms.Extensions[ExtLogTags] == "" {
		return nil
	}
	var tags map[string]string
	if err := json.Unmarshal([]byte(perms.Extensions[ExtLogTags]), &tags); err != nil || tags["source_id"] == "" {
		return nil
	}
	return tags
}
