package server

import (
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshalgo"
)

// RestrictHostKeys limits each host key to the allowed signature algorithms (the resolved
// allowed_host_key_algorithms: sshalgo's defaults unless the operator listed some). Keys left
// with no allowed algorithm are dropped; it is an error if none remain.
func RestrictHostKeys(keys []ssh.Signer, allowed []string) ([]ssh.Signer, error) {
	var out []ssh.Signer
	for _, k := range keys {
		r, algs, err := sshalgo.RestrictSigner(k, allowed)
		if err != nil {
			return nil, err
		}
		if len(algs) > 0 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no host key can sign with any of %v", allowed)
	}
	return out, nil
}
