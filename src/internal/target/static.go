package target

import (
	"errors"
	"fmt"
)

// StaticSpec describes one static target: fixed sshd instances that need no BBS.
// PrivateKeyPEM is a secret.
type StaticSpec struct {
	Name            string
	Addresses       []string // host:port of each instance, by index
	HostFingerprint string   // pins every instance's host key
	User            string   // "" = the relay's default user
	PrivateKeyPEM   []byte   // the key the proxy logs in with
}

// Static resolves "<target>/<index>" to one of the configured instances.
type Static struct {
	specs map[string]StaticSpec
}

// ErrUnknownStaticTarget is returned for a name or index that is not configured.
var ErrUnknownStaticTarget = errors.New("unknown static target instance")

// NewStatic checks and indexes the specs.
func NewStatic(specs []StaticSpec) (*Static, error) {
	s := &Static{specs: make(map[string]StaticSpec, len(specs))}
	for _, sp := range specs {
		switch {
		case sp.Name == "":
			return nil, errors.New("static target without a name")
		case len(sp.Addresses) == 0:
			return nil, fmt.Errorf("static target %q has no instances", sp.Name)
		case sp.HostFingerprint == "":
			return nil, fmt.Errorf("static target %q pins no host key", sp.Name)
		case len(sp.PrivateKeyPEM) == 0:
			return nil, fmt.Errorf("static target %q has no private key", sp.Name)
		}
		if _, dup := s.specs[sp.Name]; dup {
			return nil, fmt.Errorf("static target %q defined twice", sp.Name)
		}
		sp.Addresses = append([]string(nil), sp.Addresses...)
		s.specs[sp.Name] = sp
	}
	return s, nil
}

// Resolve returns the dial target of instance index of the named target. The result pins the
// host key and carries the login key exactly like a BBS target's diego-ssh route, so the relay
// treats both alike.
func (s *Static) Resolve(name string, index int) (Target, error) {
	sp, ok := s.specs[name]
	if !ok || index < 0 || index >= len(sp.Addresses) {
		return Target{}, fmt.Errorf("%w: %s/%d", ErrUnknownStaticTarget, name, index)
	}
	return Target{
		ProcessGUID:  name,
		Index:        index,
		InstanceGUID: fmt.Sprintf("static:%s/%d", name, index),
		Address:      sp.Addresses[index],
		Route: Route{
			HostFingerprint: sp.HostFingerprint,
			User:            sp.User,
			PrivateKey:      string(sp.PrivateKeyPEM),
		},
	}, nil
}
