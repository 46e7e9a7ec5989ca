package server

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// RestrictHostKeys limits each host key to the allowed signature algorithms (empty allowed =
// no restriction). Keys left with no allowed algorithm are dropped; it is an error if none remain.
func RestrictHostKeys(keys []ssh.Signer, allowed []string) ([]ssh.Signer, error) {
	if len(allowed) == 0 {
		return keys, nil
	}
	var out []ssh.Signer
	for _, k := range keys {
		var algs []string
		for _, a := range algorithmsFor(k.PublicKey().Type()) {
			if slices.Contains(allowed, a) {
				algs = append(algs, a)
			}
		}
		if len(algs) == 0 {
			continue
		}
		as, ok := k.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("host key %s cannot be restricted to algorithms", k.PublicKey().Type())
		}
		ms, err := ssh.NewSignerWithAlgorithms(as, algs)
		if err != nil {
			return nil, err
		}
		out = append(out, ms)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no host key supports any of allowed_host_key_algorithms %v", allowed)
	}
	return out, nil
}

func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}
