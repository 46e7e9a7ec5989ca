// Package sshalgo checks the algorithm names operators list (allowed ciphers, MACs, key
// exchanges, host-key algorithms) against what golang.org/x/crypto/ssh implements, so both
// config files reject the same names the same way.
package sshalgo

import (
	"slices"

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
		return slices.Concat(sup.KeyExchanges, insec.KeyExchanges)
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
