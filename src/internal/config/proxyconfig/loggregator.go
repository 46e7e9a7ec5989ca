package proxyconfig

import (
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

// loggregatorServerName is the name the Loggregator agent's certificate carries.
const loggregatorServerName = "metron"

// resolve checks the loggregator keys and loads the mutual TLS config for the agent.
func (l *Loggregator) resolve(r *Resolved, add func(key, format string, args ...any)) {
	if !l.Enabled {
		return
	}
	if _, _, err := net.SplitHostPort(l.Address); err != nil {
		add("loggregator.address", "%v", err)
	}
	if l.SourceID == "" {
		add("loggregator.source_id", "must not be empty when loggregator.enabled is true")
	}
	set := true
	for _, f := range []struct{ key, file string }{{"loggregator.ca_cert_file", l.CACertFile},
		{"loggregator.cert_file", l.CertFile}, {"loggregator.key_file", l.KeyFile}} {
		if f.file == "" {
			add(f.key, "must be set when loggregator.enabled is true")
			set = false
		}
	}
	if !set { // still name what is wrong with the files that are set
		if l.CACertFile != "" {
			clientTLS(add, tlsFiles{caKey: "loggregator.ca_cert_file", ca: []string{l.CACertFile}})
		}
		for _, f := range []struct{ key, file string }{{"loggregator.cert_file", l.CertFile}, {"loggregator.key_file", l.KeyFile}} {
			if f.file != "" {
				if _, err := os.ReadFile(f.file); err != nil {
					add(f.key, "%v", err)
				}
			}
		}
		return
	}
	if cfg := clientTLS(add, tlsFiles{caKey: "loggregator.ca_cert_file", ca: []string{l.CACertFile},
		certKey: "loggregator.cert_file", keyKey: "loggregator.key_file", cert: l.CertFile, key: l.KeyFile}); cfg != nil {
		cfg.ServerName = loggregatorServerName
		r.LoggregatorTLS = cfg
	}
}
