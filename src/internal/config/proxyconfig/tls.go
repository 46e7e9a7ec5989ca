package proxyconfig

import (
	"crypto/tls"
)

func clientTLS(caFiles []string, certFile, keyFile string, skipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify} //nolint:gosec // operator opt-in
	if len(caFiles) > 0 {
		pool, err := LoadCertPool(caFiles...)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

func nonEmpty(files ...string) []string {
	var out []string
	for _, f := range files {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// UAATLS is the TLS client configuration for the UAA token URL.
func (c *Config) UAATLS() (*tls.Config, error) {
	return clientTLS(nonEmpty(c.UAA.CACertFile), "", "", c.UAA.SkipCertVerify)
}

// CCTLS is the TLS client configuration for the Cloud Controller internal API.
func (c *Config) CCTLS() (*tls.Config, error) {
	return clientTLS(nonEmpty(c.CC.CACertFile), c.CC.ClientCertFile, c.CC.ClientKeyFile, c.CC.SkipCertVerify)
}

// BackendTLS is the mTLS client configuration for app instances (ServerName is set per dial),
// or nil when backends_tls is off.
func (c *Config) BackendTLS() (*tls.Config, error) {
	if !c.BackendsTLS.Enabled {
		return nil, nil
	}
	return clientTLS(c.BackendsTLS.CACertFiles, c.BackendsTLS.ClientCertFile, c.BackendsTLS.ClientKeyFile, false)
}
