package sshalgo_test

import (
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshalgo"
)

func TestUnknownKeepsImplementedNamesSecureOrNot(t *testing.T) {
	got := sshalgo.Unknown(sshalgo.Cipher, []string{"aes128-gcm@openssh.com", "rot13", ssh.InsecureAlgorithms().Ciphers[0], ""})
	if !slices.Equal(got, []string{"rot13", ""}) {
		t.Errorf("Unknown(Cipher) = %q", got)
	}
	cases := map[sshalgo.Kind]string{sshalgo.MAC: "hmac-sha2-256-etm@openssh.com", sshalgo.KeyExchange: "curve25519-sha256", sshalgo.HostKey: "ssh-ed25519"}
	for kind, name := range cases {
		if u := sshalgo.Unknown(kind, []string{name, "aes128-ctr-nope"}); !slices.Equal(u, []string{"aes128-ctr-nope"}) {
			t.Errorf("Unknown(%d, %s) = %q", kind, name, u)
		}
	}
	if u := sshalgo.Unknown(sshalgo.MAC, []string{"aes128-gcm@openssh.com"}); len(u) != 1 {
		t.Errorf("a cipher passed as a MAC: %q", u)
	}
}

// The defaults are implemented, contain nothing x/crypto calls insecure, and keep what the
// issue requires (upstream's curve25519-sha256@libssh.org, mlkem768x25519-sha256,
// curve25519-sha256) while leaving out SHA-1, NIST-curve key exchange and encrypt-and-MAC.
func TestDefaultsAreImplementedAndSound(t *testing.T) {
	insecure := ssh.InsecureAlgorithms()
	for kind, bad := range map[sshalgo.Kind][]string{
		sshalgo.Cipher:      insecure.Ciphers,
		sshalgo.MAC:         slices.Concat(insecure.MACs, []string{ssh.HMACSHA1, ssh.HMACSHA256, ssh.HMACSHA512}),
		sshalgo.KeyExchange: slices.Concat(insecure.KeyExchanges, []string{ssh.KeyExchangeECDHP256, ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521}),
		sshalgo.HostKey:     insecure.HostKeys,
	} {
		d := sshalgo.Default(kind)
		if len(d) == 0 {
			t.Fatalf("no default for %s", kind.What())
		}
		if u := sshalgo.Unknown(kind, d); len(u) > 0 {
			t.Errorf("default %ss not implemented: %q", kind.What(), u)
		}
		for _, name := range d {
			if slices.Contains(bad, name) {
				t.Errorf("default %ss include %s", kind.What(), name)
			}
		}
	}
	kex := sshalgo.Default(sshalgo.KeyExchange)
	for _, must := range []string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org"} {
		if !slices.Contains(kex, must) {
			t.Errorf("default key exchanges lack %s", must)
		}
	}
	if hk := sshalgo.Default(sshalgo.HostKey); slices.Contains(hk, ssh.KeyAlgoRSA) || !slices.Contains(hk, ssh.KeyAlgoRSASHA256) {
		t.Errorf("host key defaults %q: want RSA with SHA-2 only", hk)
	}
	// Default returns a copy.
	d := sshalgo.Default(sshalgo.Cipher)
	d[0] = "changed"
	if sshalgo.Default(sshalgo.Cipher)[0] == "changed" {
		t.Error("Default shares its backing array")
	}
}

func TestResolve(t *testing.T) {
	use, dropped, err := sshalgo.Resolve(sshalgo.MAC, nil)
	if err != nil || dropped != nil || !slices.Equal(use, sshalgo.Default(sshalgo.MAC)) {
		t.Errorf("empty list: %q %q %v", use, dropped, err)
	}
	use, dropped, err = sshalgo.Resolve(sshalgo.KeyExchange, []string{"sntrup761x25519-sha512@openssh.com", "curve25519-sha256@libssh.org", "curve25519-sha256@libssh.org", "diffie-hellman-group14-sha1"})
	if err != nil || !slices.Equal(use, []string{"curve25519-sha256@libssh.org", "diffie-hellman-group14-sha1"}) ||
		!slices.Equal(dropped, []string{"sntrup761x25519-sha512@openssh.com"}) {
		t.Errorf("mixed list: %q %q %v", use, dropped, err)
	}
	if w := sshalgo.Ignored(sshalgo.KeyExchange, dropped); w != `ignoring key exchange not implemented by golang.org/x/crypto/ssh: "sntrup761x25519-sha512@openssh.com"` {
		t.Errorf("warning %q", w)
	}
	if _, _, err := sshalgo.Resolve(sshalgo.Cipher, []string{"rot13", ""}); err == nil {
		t.Error("a list with no usable name must be an error")
	}
}

func TestRestrictSigner(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	r, algs, err := sshalgo.RestrictSigner(s, sshalgo.Default(sshalgo.HostKey))
	if err != nil || !slices.Equal(algs, []string{"rsa-sha2-512", "rsa-sha2-256"}) ||
		!slices.Equal(r.(ssh.MultiAlgorithmSigner).Algorithms(), algs) {
		t.Errorf("RSA under the defaults: %q %v", algs, err)
	}
	if r, algs, err := sshalgo.RestrictSigner(s, []string{"ssh-ed25519"}); r != nil || algs != nil || err != nil {
		t.Errorf("RSA under ed25519 only: %v %q %v", r, algs, err)
	}
}
