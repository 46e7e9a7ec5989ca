package proxyconfig

import (
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

// Signer loads the key the proxy logs in to the target's instances with.
func (t StaticTarget) Signer() (ssh.Signer, error) {
	if t.PrivateKey != "" {
		return parseSigner([]byte(t.PrivateKey))
	}
	if t.PrivateKeyFile == "" {
		return nil, errors.New("no private key")
	}
	return LoadSigner(t.PrivateKeyFile)
}

// PrivateKeyPEM returns the PEM text of the login key (inline or read from its file).
func (t StaticTarget) PrivateKeyPEM() ([]byte, error) {
	if t.PrivateKey != "" {
		return []byte(t.PrivateKey), nil
	}
	return os.ReadFile(t.PrivateKeyFile)
}

// ParsedAuthorizedKeys parses AuthorizedKeys; the error names the first bad line by position.
func (t StaticTarget) ParsedAuthorizedKeys() ([]ssh.PublicKey, error) {
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

// ValidateStaticTargets checks every entry and returns one error per problem, each naming its
// key as static_targets[i].<key>. passwordAuth says whether the diego credentials are accepted
// as a password for static targets (enable_diego_auth); without it a target needs
// authorized_keys, or nobody could ever reach it.
func ValidateStaticTargets(targets []StaticTarget, passwordAuth bool) []error {
	var errs []error
	seen := make(map[string]int, len(targets))
	for i, t := range targets {
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
		} else if _, err := fingerprint.Parse(t.HostFingerprint); err != nil {
			add("host_fingerprint", "%v", err)
		}
		switch {
		case t.PrivateKey != "" && t.PrivateKeyFile != "":
			add("private_key_file", "set either private_key_file or private_key, not both")
		case t.PrivateKey == "" && t.PrivateKeyFile == "":
			add("private_key_file", "must be set (or private_key): the key the proxy logs in to the instances with")
		case t.PrivateKey != "":
			if _, err := t.Signer(); err != nil {
				add("private_key", "%v", err)
			}
		default:
			if _, err := t.Signer(); err != nil {
				add("private_key_file", "%v", err)
			}
		}
		if strings.ContainsAny(t.User, " \t\r\n") {
			add("user", "must not contain white space")
		}
		if _, err := t.ParsedAuthorizedKeys(); err != nil {
			errs = append(errs, fmt.Errorf("%s%v", key(""), err))
		}
		if len(t.AuthorizedKeys) == 0 && !passwordAuth {
			add("authorized_keys", "empty and enable_diego_auth is false: no one could log in to %q", t.Name)
		}
	}
	return errs
}
