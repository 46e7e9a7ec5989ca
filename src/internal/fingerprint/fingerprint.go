// Package fingerprint parses and compares SSH host-key fingerprints in the forms Cloud Foundry
// and OpenSSH write them: MD5 or SHA-1 as colon-separated hex, SHA-256 as base64 (padded or
// not), each optionally prefixed with "MD5:", "SHA1:" or "SHA256:". The hash is chosen by the
// format of the string, never guessed from the key.
package fingerprint

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Algorithm names the hash a fingerprint was made with.
type Algorithm int

const (
	// MD5 is the legacy colon-hex form (16 bytes), e.g. "a1:b2:...".
	MD5 Algorithm = iota + 1
	// SHA1 is colon-hex over 20 bytes, as older Cloud Controllers wrote host_fingerprint.
	SHA1
	// SHA256 is base64 over 32 bytes, as ssh-keygen -l prints it.
	SHA256
)

func (a Algorithm) String() string {
	switch a {
	case MD5:
		return "MD5"
	case SHA1:
		return "SHA1"
	case SHA256:
		return "SHA256"
	}
	return "unknown"
}

// Fingerprint is a parsed fingerprint: the hash algorithm and the raw digest.
type Fingerprint struct {
	Algorithm Algorithm
	Digest    []byte
}

// ErrEmpty is returned by Parse for an empty string.
var ErrEmpty = errors.New("empty fingerprint")

// Parse reads a fingerprint in any of the supported forms.
func Parse(s string) (Fingerprint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Fingerprint{}, ErrEmpty
	}
	want := Algorithm(0)
	if i := strings.IndexByte(s, ':'); i > 0 {
		switch strings.ToUpper(s[:i]) {
		case "MD5":
			want, s = MD5, s[i+1:]
		case "SHA1":
			want, s = SHA1, s[i+1:]
		case "SHA256":
			want, s = SHA256, s[i+1:]
		}
	}
	if want == SHA256 || (want == 0 && !strings.Contains(s, ":")) {
		d, err := decodeBase64(s)
		if err != nil {
			return Fingerprint{}, err
		}
		return Fingerprint{Algorithm: SHA256, Digest: d}, nil
	}
	d, err := decodeColonHex(s)
	if err != nil {
		return Fingerprint{}, err
	}
	got := MD5
	if len(d) == sha1.Size {
		got = SHA1
	}
	if want != 0 && want != got {
		return Fingerprint{}, fmt.Errorf("%s fingerprint has %d bytes, want %d", want, len(d), size(want))
	}
	return Fingerprint{Algorithm: got, Digest: d}, nil
}

func size(a Algorithm) int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	}
	return sha256.Size
}

func decodeBase64(s string) ([]byte, error) {
	var (
		d   []byte
		err error
	)
	switch len(s) {
	case 43:
		d, err = base64.RawStdEncoding.Strict().DecodeString(s)
	case 44:
		d, err = base64.StdEncoding.Strict().DecodeString(s)
	default:
		return nil, fmt.Errorf("SHA256 fingerprint must be 43 or 44 base64 characters, got %d", len(s))
	}
	if err != nil {
		return nil, fmt.Errorf("SHA256 fingerprint is not base64: %w", err)
	}
	if len(d) != sha256.Size {
		return nil, fmt.Errorf("SHA256 fingerprint has %d bytes, want %d", len(d), sha256.Size)
	}
	return d, nil
}

func decodeColonHex(s string) ([]byte, error) {
	parts := strings.Split(s, ":")
	if len(parts) != md5.Size && len(parts) != sha1.Size {
		return nil, fmt.Errorf("colon-hex fingerprint must have %d (MD5) or %d (SHA1) bytes, got %d", md5.Size, sha1.Size, len(parts))
	}
	out := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) != 2 {
			return nil, fmt.Errorf("colon-hex fingerprint byte %d is %q, want two hex digits", i, p)
		}
		b, err := hex.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("colon-hex fingerprint byte %d is %q, want two hex digits", i, p)
		}
		out[i] = b[0]
	}
	return out, nil
}

// Matches reports whether key has this fingerprint (constant-time over the digest).
func (f Fingerprint) Matches(key ssh.PublicKey) bool {
	if key == nil || f.Algorithm == 0 {
		return false
	}
	return subtle.ConstantTimeCompare(digest(f.Algorithm, key), f.Digest) == 1
}

// String renders the fingerprint in its canonical form: colon-hex for MD5 and SHA1,
// "SHA256:" plus unpadded base64 for SHA256.
func (f Fingerprint) String() string {
	if f.Algorithm == SHA256 {
		return "SHA256:" + base64.RawStdEncoding.EncodeToString(f.Digest)
	}
	return colonHex(f.Digest)
}

func digest(a Algorithm, key ssh.PublicKey) []byte {
	b := key.Marshal()
	switch a {
	case MD5:
		d := md5.Sum(b)
		return d[:]
	case SHA1:
		d := sha1.Sum(b)
		return d[:]
	case SHA256:
		d := sha256.Sum256(b)
		return d[:]
	}
	return nil
}

func colonHex(d []byte) string {
	var sb strings.Builder
	for i, c := range d {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}

// Compute returns key's fingerprint with the given algorithm.
func Compute(a Algorithm, key ssh.PublicKey) Fingerprint {
	return Fingerprint{Algorithm: a, Digest: digest(a, key)}
}

// MD5Hex is key's MD5 fingerprint in colon-hex, as diego-ssh's host_fingerprint was written.
func MD5Hex(key ssh.PublicKey) string { return colonHex(digest(MD5, key)) }

// SHA1Hex is key's SHA-1 fingerprint in colon-hex.
func SHA1Hex(key ssh.PublicKey) string { return colonHex(digest(SHA1, key)) }

// SHA256Base64 is key's SHA-256 fingerprint as unpadded base64 without a prefix
// (the form Cloud Controller writes into host_256_fingerprint is accepted with or without padding).
func SHA256Base64(key ssh.PublicKey) string {
	return base64.RawStdEncoding.EncodeToString(digest(SHA256, key))
}
