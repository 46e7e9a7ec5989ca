package proxyconfig

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

// StaticTarget is one entry of `static_targets:`: a fixed set of sshd instances reachable
// without a BBS as the SSH user "<name>/<index>" (docs/config-files.md, "Static targets").
type StaticTarget struct {
	// Name is the first half of the user name; letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Instances are the host:port addresses of the sshd instances, by index.
	Instances []string `yaml:"instances"`
	// HostFingerprint pins the instances' host key (MD5 or SHA1 colon-hex, or SHA256 base64
	// with or without the "SHA256:" prefix).
	HostFingerprint string `yaml:"host_fingerprint"`
	// PrivateKeyFile is the PEM key the proxy logs in to the instances with.
	PrivateKeyFile string `yaml:"private_key_file"`
	// PrivateKey is the same key inline (PEM), for configs rendered straight from manifest
	// properties. Exactly one of PrivateKey and PrivateKeyFile is set.
	PrivateKey string `yaml:"private_key"`
	// User is the user name presented to the instances' sshd ("" = vcap).
	User string `yaml:"user"`
	// AuthorizedKeys are authorized_keys lines whose keys may open sessions to this target.
	AuthorizedKeys []string `yaml:"authorized_keys"`
}

// maxStaticTargetName bounds a target name (it is logged and shown in user names).
const maxStaticTargetName = 63

// ValidStaticTargetName reports whether s may name a static target: 1 to 63 letters, digits,
// '.', '_' or '-', starting with a letter or digit. No ':' (reserved for cf:/diego:) and no '/'
// (separates the index).
func ValidStaticTargetName(s string) bool {
	if s == "" || len(s) > maxStaticTargetName {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// loginKey reads the PEM key the proxy logs in to the target's instances with (inline or from
// its file) and parses it: exactly one private key.
func (t StaticTarget) loginKey() (ssh.Signer, error) {
	data := []byte(t.PrivateKey)
	if t.PrivateKey == "" {
		var err error
		if data, err = os.ReadFile(t.PrivateKeyFile); err != nil {
			return nil, err
		}
	}
	blocks, rest := 0, data
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks++
	}
	switch {
	case blocks > 1:
		return nil, fmt.Errorf("holds %d private keys; one is expected", blocks)
	case blocks == 1 && len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("text after the private key")
	}
	return parseSigner(data)
}

// parsedAuthorizedKeys parses AuthorizedKeys; the error names the first bad line by position.
func (t StaticTarget) parsedAuthorizedKeys() ([]ssh.PublicKey, error) {
	keys := make([]ssh.PublicKey, 0, len(t.AuthorizedKeys))
	for i, line := range t.AuthorizedKeys {
		k, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("authorized_keys[%d]: not an authorized_keys line", i)
		}
		if len(strings.TrimSpace(string(rest))) > 0 {
			return nil, fmt.Errorf("authorized_keys[%d]: holds more than one key", i)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ResolvedStaticTarget is a static target with its keys read and parsed.
type ResolvedStaticTarget struct {
	StaticTarget
	// Keys are AuthorizedKeys parsed; HostKey is HostFingerprint parsed; LoginKey is the
	// login key (inline or read from its file) parsed.
	Keys     []ssh.PublicKey
	HostKey  fingerprint.Fingerprint
	LoginKey ssh.Signer
}

// ResolveStaticTargets checks every entry, reads and parses its keys, and returns one error
// per problem, each naming its key as static_targets[i].<key>. passwordAuth says whether the diego credentials are accepted
// as a password for static targets (enable_diego_auth); without it a target needs
// authorized_keys, or nobody could ever reach it.
func ResolveStaticTargets(targets []StaticTarget, passwordAuth bool) ([]ResolvedStaticTarget, []error) {
	var errs []error
	out := make([]ResolvedStaticTarget, 0, len(targets))
	seen := make(map[string]int, len(targets))
	for i, t := range targets {
		rt := ResolvedStaticTarget{StaticTarget: t}
		key := func(k string) string { return fmt.Sprintf("static_targets[%d].%s", i, k) }
		add := func(k, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", key(k), fmt.Sprintf(format, args...)))
		}
		switch {
		case t.Name == "":
			add("name", "must not be empty")
		case !ValidStaticTargetName(t.Name):
			add("name", "%q must be 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", t.Name, maxStaticTargetName)
		default:
			if j, dup := seen[t.Name]; dup {
				add("name", "%q is already the name of static_targets[%d]", t.Name, j)
			} else {
				seen[t.Name] = i
			}
		}
		if len(t.Instances) == 0 {
			add("instances", "at least one host:port is required")
		}
		for j, a := range t.Instances {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				add(fmt.Sprintf("instances[%d]", j), "%v", err)
			} else if host == "" || port == "" || port == "0" {
				add(fmt.Sprintf("instances[%d]", j), "%q needs a host and a port", a)
			}
		}
		if t.HostFingerprint == "" {
			add("host_fingerprint", "must be set (the instances' host key is always pinned)")
		} else if fp, err := fingerprint.Parse(t.HostFingerprint); err != nil {
			add("host_fingerprint", "%v", err)
		} else {
			rt.HostKey = fp
		}
		switch {
		case t.PrivateKey != "" && t.PrivateKeyFile != "":
			add("private_key_file", "set either private_key_file or private_key, not both")
		case t.PrivateKey == "" && t.PrivateKeyFile == "":
			add("private_key_file", "must be set (or private_key): the key the proxy logs in to the instances with")
		default:
			signer, err := t.loginKey()
			k := "private_key_file"
			if t.PrivateKey != "" {
				k = "private_key"
			}
			if err != nil {
				add(k, "%v", err)
			}
			rt.LoginKey = signer
		}
		if strings.ContainsAny(t.User, " \t\r\n") {
			add("user", "must not contain white space")
		}
		keys, err := t.parsedAuthorizedKeys()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s%v", key(""), err))
		}
		rt.Keys = keys
		if len(t.AuthorizedKeys) == 0 && !passwordAuth {
			add("authorized_keys", "empty and enable_diego_auth is false: no one could log in to %q", t.Name)
		}
		out = append(out, rt)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}
