package proxyconfig

import (
	"crypto/tls"
	"net"
	"os"
)

// Loggregator is the `loggregator:` section: the lines ssh-proxy writes into an app's log
// stream (`cf logs`) and its ssh-connections gauge, sent to the local Loggregator agent's v2
// ingress over mutual TLS (the agent's certificate must name "metron").
type Loggregator struct {
	Enabled    bool   `yaml:"enabled"`
	Address    string `yaml:"address"`
	CACertFile string `yaml:"ca_cert_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	// SourceID and InstanceID identify the proxy on its gauge envelopes.
	SourceID   string `yaml:"source_id"`
	InstanceID string `yaml:"instance_id"`
}

// DefaultLoggregator is the job spec's defaults.
func DefaultLoggregator() Loggregator {
	return Loggregator{Address: "localhost:3458", SourceID: "ssh_proxy"}
}

func (l *Loggregator) validate(add func(key, format string, args ...any)) {
	if !l.Enabled {
		return
	}
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		add("loggregator.address", "%v", err)
	}
	if l.SourceID == "" {
		add("loggregator.source_id", "must not be empty when loggregator.enabled is true")
	}
	readable := func(key, file string) bool {
		if file == "" {
			add(key, "must be set when loggregator.enabled is true")
			return false
		}
		if _, err := os.ReadFile(file); err != nil {
			add(key, "%v", err)
			return false
		}
		return true
	}
	if readable("loggregator.ca_cert_file", l.CACertFile) {
		checkCA("loggregator.ca_cert_file", l.CACertFile, add)
	}
	certOK := readable("loggregator.cert_file", l.CertFile)
	keyOK := readable("loggregator.key_file", l.KeyFile)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile); err != nil {
			add("loggregator.cert_file", "does not pair with loggregator.key_file: %v", err)
		}
	}
}
