// Package target turns a granted instance (process guid + index) into the address, transport
// and credentials of the sshd inside that app instance, using the BBS. Its errors are plain
// typed values; the login words them for the user.
package target

import (
	"crypto/tls"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

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
	// HostKey pins the sshd's host key (parsed from the route's or the static target's
	// fingerprint where it arrives: once per login, or once at start).
	HostKey fingerprint.Fingerprint
	// User, Password and Signer are how the proxy logs in to the sshd (User "" = the relay's
	// default; Signer nil = no key).
	User, Password string
	Signer         ssh.Signer
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
