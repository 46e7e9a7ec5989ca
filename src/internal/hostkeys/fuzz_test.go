package hostkeys

import (
	"crypto/ed25519"
	"testing"

	"golang.org/x/crypto/ssh"
)

// FuzzProve feeds arbitrary prove payloads to an Announcer: it must never panic, and whenever
// it answers, every signature must verify for the key asked for.
func FuzzProve(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer, err := ssh.NewSignerFromKey(seed)
	if err != nil {
		f.Fatal(err)
	}
	a := New([]ssh.Signer{signer}, nil)
	f.Add(a.Payload())
	f.Add([]byte{0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(append(a.Payload(), a.Payload()...))
	session := []byte("session-id")
	f.Fuzz(func(t *testing.T, payload []byte) {
		reply, err := a.Prove(session, "", payload)
		if err != nil {
			return
		}
		keys, err := ParseKeys(payload)
		if err != nil {
			t.Fatalf("answered a payload that does not parse: %v", err)
		}
		sigs, err := ParseSignatures(reply)
		if err != nil || len(sigs) != len(keys) {
			t.Fatalf("reply has %d signatures for %d keys (%v)", len(sigs), len(keys), err)
		}
		for i := range keys {
			if err := VerifyProof(session, "", keys[i], sigs[i]); err != nil {
				t.Fatalf("signature %d does not verify: %v", i, err)
			}
		}
	})
}
