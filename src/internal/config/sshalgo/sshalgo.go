// Package sshalgo holds the algorithm lists both binaries negotiate: the defaults used when an
// operator lists none, and the filtering of the names an operator lists (allowed ciphers, MACs,
// key exchanges, host-key algorithms) against what golang.org/x/crypto/ssh implements. The
// ssh-proxy and the sshd configure their servers from here, so both offer the same defaults and
// treat unknown names the same way.
package sshalgo

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Kind is one of the four negotiated algorithm lists.
type Kind int

const (
	Cipher Kind = iota
	MAC
	KeyExchange
	HostKey
)

// What names the kind in messages ("cipher", "MAC", ...).
func (k Kind) What() string {
	switch k {
	case Cipher:
		return "cipher"
	case MAC:
		return "MAC"
	case KeyExchange:
		return "key exchange"
	case HostKey:
		return "host key algorithm"
	}
	return "algorithm"
}

// curve25519LibSSH is the pre-RFC name of curve25519-sha256. x/crypto implements it (and adds
// it by itself whenever curve25519-sha256 is configured) but lists it in neither
// SupportedAlgorithms nor InsecureAlgorithms; it is diego-ssh's only default key exchange, so
// manifests name it.
const curve25519LibSSH = "curve25519-sha256@libssh.org"

// The defaults, in the server's order of preference (the client's order decides what is used;
// ours only breaks ties). Everything here is reported by ssh-audit without a [fail] or [warn]
// line (the test in integration/algorithms runs it): no SHA-1 (diffie-hellman-group14-sha1,
// hmac-sha1*, the ssh-rsa signature), no NIST-curve key exchange, no encrypt-and-MAC modes.
// docs/config-files.md lists them with the reasons; jobs/*/spec name them.
var (
	defaultKeyExchanges = []string{
		ssh.KeyExchangeMLKEM768X25519, // post-quantum hybrid (OpenSSH 9.9's default)
		ssh.KeyExchangeCurve25519,
		curve25519LibSSH,          // diego-ssh's default; OpenSSH 6.5 to 7.3, old x/crypto clients
		ssh.KeyExchangeDH16SHA512, // for clients without curve25519 (4096-bit group)
	}
	defaultCiphers = []string{
		ssh.CipherAES128GCM,
		ssh.CipherAES256GCM,
		ssh.CipherChaCha20Poly1305,
		ssh.CipherAES256CTR,
		ssh.CipherAES192CTR,
		ssh.CipherAES128CTR,
	}
	// Only encrypt-then-MAC: hmac-sha2-256 and hmac-sha2-512 (which diego-ssh offered) MAC the
	// plaintext, and ssh-audit warns about them. Every client that has them has these too.
	defaultMACs = []string{
		ssh.HMACSHA256ETM,
		ssh.HMACSHA512ETM,
	}
	// Signature algorithms for the host key: every key type a host key may have, but RSA keys
	// only with SHA-2 signatures (RFC 8332). The ssh-rsa (SHA-1) signature is left out: OpenSSH
	// disabled it in 8.8, and every cf CLI release still supported uses a golang.org/x/crypto
	// that verifies rsa-sha2-256/512 (docs/config-files.md says which ones do not).
	defaultHostKeys = []string{
		ssh.KeyAlgoED25519,
		ssh.KeyAlgoRSASHA512,
		ssh.KeyAlgoRSASHA256,
		ssh.KeyAlgoECDSA256,
		ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521,
	}
)

// Default is the list of kind used when an operator lists none (a copy).
func Default(kind Kind) []string {
	switch kind {
	case Cipher:
		return slices.Clone(defaultCiphers)
	case MAC:
		return slices.Clone(defaultMACs)
	case KeyExchange:
		return slices.Clone(defaultKeyExchanges)
	case HostKey:
		return slices.Clone(defaultHostKeys)
	}
	return nil
}

// Known lists every name of kind the library implements, secure defaults and insecure ones
// alike (an operator may knowingly allow an insecure algorithm for an old client).
func Known(kind Kind) []string {
	sup, insec := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	switch kind {
	case Cipher:
		return slices.Concat(sup.Ciphers, insec.Ciphers)
	case MAC:
		return slices.Concat(sup.MACs, insec.MACs)
	case KeyExchange:
		return slices.Concat(sup.KeyExchanges, insec.KeyExchanges, []string{curve25519LibSSH})
	case HostKey:
		return slices.Concat(sup.HostKeys, insec.HostKeys)
	}
	return nil
}

// Unknown returns the names in list that the library does not implement, in order.
func Unknown(kind Kind, list []string) []string {
	known := Known(kind)
	var out []string
	for _, name := range list {
		if !slices.Contains(known, name) {
			out = append(out, name)
		}
	}
	return out
}

// Resolve turns an operator's list into the one to configure. An empty list means
// Default(kind). Otherwise use is the listed names the library implements, in the operator's
// order, and dropped the others (upstream diego-ssh ignored them too, since x/crypto does). A
// list without a single usable name is an error: the server could never agree on that
// algorithm with anyone.
func Resolve(kind Kind, list []string) (use, dropped []string, err error) {
	if len(list) == 0 {
		return Default(kind), nil, nil
	}
	known := Known(kind)
	for _, name := range list {
		if slices.Contains(known, name) {
			if !slices.Contains(use, name) {
				use = append(use, name)
			}
		} else {
			dropped = append(dropped, name)
		}
	}
	if len(use) == 0 {
		return nil, dropped, fmt.Errorf("no listed %s is implemented (%s); list at least one of: %s",
			kind.What(), quoteNames(dropped), strings.Join(Default(kind), ", "))
	}
	return use, dropped, nil
}

// Ignored is the warning for names Resolve dropped (the caller prefixes the key).
func Ignored(kind Kind, dropped []string) string {
	return fmt.Sprintf("ignoring %s not implemented by golang.org/x/crypto/ssh: %s", plural(kind, len(dropped)), quoteNames(dropped))
}

// SignatureAlgorithms lists the signature algorithms a key of keyType can sign with, in
// preference order (RSA keys: SHA-512, SHA-256, then SHA-1).
func SignatureAlgorithms(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// RestrictSigner limits s to the algorithms in allowed that it can sign with, and returns
// them; none (a nil signer) when it can sign with none of them and cannot be offered.
func RestrictSigner(s ssh.Signer, allowed []string) (ssh.Signer, []string, error) {
	var algs []string
	for _, a := range SignatureAlgorithms(s.PublicKey().Type()) {
		if slices.Contains(allowed, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return nil, nil, nil
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return nil, nil, fmt.Errorf("host key %s cannot be restricted to algorithms", s.PublicKey().Type())
	}
	ms, err := ssh.NewSignerWithAlgorithms(as, algs)
	if err != nil {
		return nil, nil, err
	}
	return ms, algs, nil
}

func plural(kind Kind, n int) string {
	if n == 1 {
		return kind.What()
	}
	return kind.What() + "s"
}

func quoteNames(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		if len(n) > 64 {
			n = n[:64] + "..."
		}
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
