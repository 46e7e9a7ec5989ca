package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

// SchemeStatic marks permissions for a static target ("<target>/<index>", no scheme prefix).
// ExtProcessGUID then carries the target name.
const SchemeStatic Scheme = "static"

// Reasons specific to static targets.
const (
	ReasonUnknownTarget    = "unknown target or instance index"
	ReasonKeyNotAuthorized = "public key not authorized for this target"
)

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

// StaticTarget is what the static authenticator knows about one target.
type StaticTarget struct {
	Name string
	// Instances is how many instances the target has (indexes 0..Instances-1).
	Instances int
	// AuthorizedKeys may open sessions to any instance of the target.
	AuthorizedKeys []ssh.PublicKey
}

type staticEntry struct {
	instances int
	keys      [][]byte // wire form of each authorized key
}

// Static authenticates "<target>/<index>" user names: by public key (the target's authorized
// keys, decided only once the client proved it holds the private key) or by the diego
// credentials as password (when Credentials is not empty).
type Static struct {
	targets     map[string]staticEntry
	credentials []byte
}

// NewStatic builds the authenticator. credentials are the diego credentials accepted as a
// password for every static target; nil or empty turns password logins off.
func NewStatic(targets []StaticTarget, credentials []byte) (*Static, error) {
	s := &Static{targets: make(map[string]staticEntry, len(targets)), credentials: bytes.Clone(credentials)}
	for _, t := range targets {
		if _, dup := s.targets[t.Name]; dup {
			return nil, fmt.Errorf("static target %q defined twice", t.Name)
		}
		if t.Instances < 1 {
			return nil, fmt.Errorf("static target %q has no instances", t.Name)
		}
		e := staticEntry{instances: t.Instances}
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
		return "", 0, staticEntry{}, Refuse(ReasonBadUsername, err)
	}
	e, ok := s.targets[name]
	if !ok || idx >= e.instances {
		return "", 0, staticEntry{}, Refuse(ReasonUnknownTarget, fmt.Errorf("no static target instance %s/%d", name, idx))
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

// OfferedKey is for ssh.ServerConfig.PublicKeyCallback, which also sees keys the client merely
// offers without proving it holds them. It only tells the library whether the key would be
// acceptable; the permissions it returns carry no target, so nothing can be granted on them.
func (s *Static) OfferedKey(user string, key ssh.PublicKey) (*ssh.Permissions, error) {
	_, _, e, err := s.lookup(user)
	if err != nil {
		return nil, err
	}
	if !e.authorizes(key) {
		return nil, Refuse(ReasonKeyNotAuthorized, errors.New("key not in the target's authorized_keys"))
	}
	return &ssh.Permissions{}, nil
}

// VerifiedKey is for ssh.ServerConfig.VerifiedPublicKeyCallback: the client has signed with
// key. It re-checks the key against the target (the offer may have been for another user name
// in the same connection) and grants the session.
func (s *Static) VerifiedKey(user string, key ssh.PublicKey) (*ssh.Permissions, error) {
	name, idx, e, err := s.lookup(user)
	if err != nil {
		return nil, err
	}
	if !e.authorizes(key) {
		return nil, Refuse(ReasonKeyNotAuthorized, errors.New("key not in the target's authorized_keys"))
	}
	return staticPermissions(name, idx, "key SHA256:"+fingerprint.SHA256Base64(key)), nil
}

// Password authenticates with the diego credentials.
func (s *Static) Password(user string, password []byte) (*ssh.Permissions, error) {
	name, idx, _, err := s.lookup(user)
	if err != nil {
		return nil, err
	}
	if len(s.credentials) == 0 {
		return nil, Refuse(ReasonSchemeDisabled, errors.New("password logins to static targets are off (enable_diego_auth is false)"))
	}
	want := sha256.Sum256(s.credentials)
	got := sha256.Sum256(password)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, Refuse(ReasonInvalidCredential, errors.New("diego credentials mismatch"))
	}
	return staticPermissions(name, idx, "diego"), nil
}

func staticPermissions(name string, idx int, user string) *ssh.Permissions {
	return &ssh.Permissions{Extensions: map[string]string{
		ExtScheme:      string(SchemeStatic),
		ExtProcessGUID: name,
		ExtIndex:       strconv.Itoa(idx),
		ExtUser:        user,
	}}
}
