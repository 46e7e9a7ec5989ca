// Package auth decides who may open a session through the ssh-proxy and to which process
// instance. It parses the SSH user name, runs the Cloud Foundry (UAA one-time code + Cloud
// Controller ssh_access) or diego (shared secret) check, and records everything it learned in
// ssh.Permissions; nothing else the client sends is trusted afterwards.
package login

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// Scheme is the part of the user name before the colon.
type Scheme string

const (
	// SchemeCF is "cf:<app-guid>/<index>", authenticated with a UAA one-time code.
	SchemeCF Scheme = "cf"
	// SchemeDiego is "diego:<process-guid>/<index>", authenticated with the shared diego credentials.
	SchemeDiego Scheme = "diego"
)

// maxGUIDLen bounds the guid part; a process guid is an app guid plus a version guid (73 chars).
const maxGUIDLen = 128

// maxIndex is the largest instance index accepted (the BBS stores indexes as int32).
const maxIndex = 1<<31 - 1

// Username is a parsed SSH user name.
type Username struct {
	Scheme Scheme
	// GUID is the app guid (cf) or the process guid (diego).
	GUID  string
	Index int
}

func (u Username) String() string {
	return fmt.Sprintf("%s:%s/%d", u.Scheme, u.GUID, u.Index)
}

// ErrUsernameFormat is wrapped by every ParseUsername error.
var ErrUsernameFormat = errors.New("user name must be cf:<app-guid>/<index> or diego:<process-guid>/<index>")

// ParseUsername parses "cf:<guid>/<index>" or "diego:<guid>/<index>" strictly: a known
// scheme, a guid of letters, digits, dashes and underscores (diego-ssh's [a-zA-Z0-9_-]+, which
// process guids need; 1–128 characters), and a decimal index without sign or leading zeros
// that fits an int32.
func ParseUsername(s string) (Username, error) {
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return Username{}, fmt.Errorf("%w: no scheme", ErrUsernameFormat)
	}
	scheme := Scheme(s[:colon])
	if scheme != SchemeCF && scheme != SchemeDiego {
		return Username{}, fmt.Errorf("%w: unknown scheme %q", ErrUsernameFormat, logging.CapAt(string(scheme), 16))
	}
	rest := s[colon+1:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return Username{}, fmt.Errorf("%w: no /<index>", ErrUsernameFormat)
	}
	guid, idx := rest[:slash], rest[slash+1:]
	if guid == "" || len(guid) > maxGUIDLen {
		return Username{}, fmt.Errorf("%w: guid must have 1 to %d characters", ErrUsernameFormat, maxGUIDLen)
	}
	for _, c := range guid {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return Username{}, fmt.Errorf("%w: guid may contain only letters, digits, dashes and underscores", ErrUsernameFormat)
		}
	}
	if idx == "" || len(idx) > 10 || (len(idx) > 1 && idx[0] == '0') {
		return Username{}, fmt.Errorf("%w: index must be a decimal number without leading zeros", ErrUsernameFormat)
	}
	for _, c := range idx {
		if c < '0' || c > '9' {
			return Username{}, fmt.Errorf("%w: index must be a decimal number without leading zeros", ErrUsernameFormat)
		}
	}
	n, err := strconv.ParseInt(idx, 10, 64)
	if err != nil || n > maxIndex {
		return Username{}, fmt.Errorf("%w: index out of range", ErrUsernameFormat)
	}
	return Username{Scheme: scheme, GUID: guid, Index: int(n)}, nil
}
