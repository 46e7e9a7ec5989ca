package sshalgo_test

import (
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
