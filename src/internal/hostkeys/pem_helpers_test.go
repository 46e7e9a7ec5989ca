package hostkeys_test

import (
	"crypto"
	"encoding/pem"

	"golang.org/x/crypto/ssh"
)

// keyed remembers the private key behind each signer the tests create.
var keyed = map[string]crypto.PrivateKey{}

func mustPrivate(s ssh.Signer) crypto.PrivateKey {
	return keyed[string(s.PublicKey().Marshal())]
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
