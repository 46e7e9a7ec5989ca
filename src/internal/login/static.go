package login

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/target"
)

// SchemeStatic marks permissions for a static target ("<target>/<index>", no scheme prefix).
// Grant.ProcessGUID then carries the target name.
const SchemeStatic Scheme = "static"

// ErrStaticUsernameFormat is wrapped by every ParseStaticUsername error.
var ErrStaticUsernameFormat = errors.New("user name must be <target>/<index>")

// ParseStaticUsername parses "<target>/<index>": a name of 1–63 letters, digits, '.', '_' or
// '-' (starting with a letter or digit) and a decimal index without sign or leading zeros.
func ParseStaticUsername(s string) (name string, index int, err error) {
	slash := strings.IndexByte(s, '/')
	if slash < 0 {
		return "", 0, fmt.Errorf("%w: no /<index>", ErrStaticUsernameFormat)
	}
	name, idx := s[:slash], s[slash+1:]
	if name == "" || len(name) > 63 {
		return "", 0, fmt.Errorf("%w: target name must have 1 to 63 characters", ErrStaticUsernameFormat)
	}
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '.' && c != '_' && c != '-')) {
			return "", 0, fmt.Errorf("%w: target name may contain only letters, digits, '.', '_' and '-'", ErrStaticUsernameFormat)
		}
	}
	if idx == "" || len(idx) > 10 || (len(idx) > 1 && idx[0] == '0') {
		return "", 0, fmt.Errorf("%w: index must be a decimal number without leading zeros", ErrStaticUsernameFormat)
	}
	for _, c := range idx {
		if c < '0' || c > '9' {
			return "", 0, fmt.Errorf("%w: index must be a decimal number without leading zeros", ErrStaticUsernameFormat)
		}
	}
	n, err := strconv.ParseInt(idx, 10, 64)
	if err != nil || n > maxIndex {
		return "", 0, fmt.Errorf("%w: index out of range", ErrStaticUsernameFormat)
	}
	return name, int(n), nil
}

// IsStaticUsername reports whether user is meant for a static target: it has no scheme (no
// ':' before the first '/'). It says nothing about validity.
func IsStaticUsername(user string) bool {
	slash := strings.IndexByte(user, '/')
	colon := strings.IndexByte(user, ':')
	return colon < 0 || (slash >= 0 && slash < colon)
}

// StaticTarget is one static target: fixed sshd instances that need no BBS, reached with
// the proxy's own key and pinned by one host-key fingerprint. Signer is a secret.
type StaticTarget struct {
	Name string
	// Addresses are host:port of each instance, by index.
	Addresses []string
	// HostKey pins every instance's host key.
	HostKey fingerprint.Fingerprint
	// User is presented to the instances' sshd ("" = the relay's default).
	User string
	// Signer is the key the proxy logs in with.
	Signer ssh.Signer
	// AuthorizedKeys may open sessions to any instance of the target.
	AuthorizedKeys []ssh.PublicKey
}

type staticEntry struct {
	StaticTarget
	keys [][]byte // wire form of each authorized key
}

// Static is the static-target login scheme: "<target>/<index>" user names, authenticated by
// public key (the target's authorized keys, decided only once the client proved it holds the
// private key) or by the diego credentials as password (when Credentials is not empty), and
// resolved to the configured instance.
type Static struct {
	targets     map[string]staticEntry
	credentials []byte
}

// NewStatic checks and indexes the targets. credentials are the diego credentials accepted as
// a password for every static target; nil or empty turns password logins off.
func NewStatic(targets []StaticTarget, credentials []byte) (*Static, error) {
	s := &Static{targets: make(map[string]staticEntry, len(targets)), credentials: bytes.Clone(credentials)}
	for _, t := range targets {
		switch {
		case t.Name == "":
			return nil, errors.New("static target without a name")
		case len(t.Addresses) == 0:
			return nil, fmt.Errorf("static target %q has no instances", t.Name)
		case len(t.HostKey.Digest) == 0:
			return nil, fmt.Errorf("static target %q pins no host key", t.Name)
		case t.Signer == nil:
			return nil, fmt.Errorf("static target %q has no private key", t.Name)
		}
		if _, dup := s.targets[t.Name]; dup {
			return nil, fmt.Errorf("static target %q defined twice", t.Name)
		}
		t.Addresses = slices.Clone(t.Addresses)
		e := staticEntry{StaticTarget: t}
		for _, k := range t.AuthorizedKeys {
			e.keys = append(e.keys, k.Marshal())
		}
		s.targets[t.Name] = e
	}
	return s, nil
}

func (s *Static) lookup(user string) (string, int, staticEntry, error) {
	name, idx, err := ParseStaticUsername(user)
	if err != nil {
		return "", 0, staticEntry{}, refuse(ReasonBadUsername, err)
	}
	e, ok := s.targets[name]
	if !ok || idx >= len(e.Addresses) {
		return "", 0, staticEntry{}, refuse(ReasonUnknownTarget, fmt.Errorf("no static target instance %s/%d", name, idx))
	}
	return name, idx, e, nil
}

func (e staticEntry) authorizes(key ssh.PublicKey) bool {
	wire := key.Marshal()
	found := false
	for _, k := range e.keys {
		// Keep looping: which entry matched must not show in the timing.
		if subtle.ConstantTimeCompare(k, wire) == 1 {
			found = true
		}
	}
	return found
}

// offeredKey answers ssh.ServerConfig.PublicKeyCallback, which also sees keys the client
// merely offers without proving it holds them: it only says whether the key would be
// acceptable and grants nothing.
func (s *Static) offeredKey(user string, key ssh.PublicKey) error {
	_, _, e, err := s.lookup(user)
	if err != nil {
		return err
	}
	if !e.authorizes(key) {
		return refuse(ReasonKeyNotAuthorized, errors.New("key not in the target's authorized_keys"))
	}
	return nil
}

// verifiedKey runs once the client has signed with key. It re-checks the key against the
// target (the offer may have been for another user name in the same connection).
func (s *Static) verifiedKey(user string, key ssh.PublicKey) (*Grant, error) {
	name, idx, e, err := s.lookup(user)
	if err != nil {
		return nil, err
	}
	if !e.authorizes(key) {
		return nil, refuse(ReasonKeyNotAuthorized, errors.New("key not in the target's authorized_keys"))
	}
	return e.grant(name, idx, "key SHA256:"+fingerprint.SHA256Base64(key)), nil
}

// password authenticates with the diego credentials.
func (s *Static) password(user string, password []byte) (*Grant, error) {
	name, idx, e, err := s.lookup(user)
	if err != nil {
		return nil, err
	}
	if len(s.credentials) == 0 {
		return nil, refuse(ReasonSchemeDisabled, errors.New("password logins to static targets are off (enable_diego_auth is false)"))
	}
	want := sha256.Sum256(s.credentials)
	got := sha256.Sum256(password)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, refuse(ReasonInvalidCredential, errors.New("diego credentials mismatch"))
	}
	return e.grant(name, idx, "diego"), nil
}

// grant is a static login with its dial target: the host key pinned and the login key carried
// exactly like a BBS target's diego-ssh route, so the relay treats both alike.
func (e staticEntry) grant(name string, idx int, user string) *Grant {
	return &Grant{Scheme: SchemeStatic, ProcessGUID: name, Index: idx, User: user,
		InstanceGUID: fmt.Sprintf("static:%s/%d", name, idx),
		target: target.Target{ProcessGUID: name, Index: idx, InstanceGUID: fmt.Sprintf("static:%s/%d", name, idx),
			Address: e.Addresses[idx], HostKey: e.HostKey, User: e.User, Signer: e.Signer}}
}
