package fingerprint

import (
	"crypto/ed25519"
	"testing"

	"golang.org/x/crypto/ssh"
)

func FuzzParse(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	key, err := ssh.NewPublicKey(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(MD5Hex(key))
	f.Add(SHA1Hex(key))
	f.Add(SHA256Base64(key))
	f.Add(ssh.FingerprintSHA256(key))
	f.Add("MD5:" + MD5Hex(key))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := Parse(s)
		if err != nil {
			return
		}
		if len(fp.Digest) != size(fp.Algorithm) {
			t.Fatalf("%q parsed to %s with %d bytes", s, fp.Algorithm, len(fp.Digest))
		}
		again, err := Parse(fp.String())
		if err != nil || again.Algorithm != fp.Algorithm || string(again.Digest) != string(fp.Digest) {
			t.Fatalf("%q did not round-trip: %v", s, err)
		}
	})
}
