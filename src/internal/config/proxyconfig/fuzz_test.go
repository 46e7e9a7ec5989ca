package proxyconfig

import (
	"strings"
	"testing"
)

// FuzzParse loads arbitrary bytes as a config file: no panic, and every problem Validate finds
// is one line naming a key. File-path keys are cleared first so the fuzzer cannot make
// validation read arbitrary files (a device like /dev/zero would never end).
func FuzzParse(f *testing.F) {
	f.Add([]byte("address: 127.0.0.1:2222\nmax_unauthenticated_connections: 10\n"))
	f.Add([]byte("per_source_penalties: {enabled: true, min: 1m, max: 1s}\nkeepalive: {interval: 1s, count_max: 0}\n"))
	f.Add([]byte("proxy_protocol: {enabled: true, allowed_cidrs: [10.0.0.0/8, '::1', x]}\n"))
	f.Add([]byte("static_targets: [{name: a, instances: ['127.0.0.1:1']}]\nmetrics: {address: ':9'}\n"))
	f.Add([]byte("uaa: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("error with a config")
			}
			return
		}
		c.HostKeyFiles, c.NextHostKeyFiles = nil, nil
		c.UAA.CACertFile, c.CC.CACertFile, c.CC.ClientCertFile, c.CC.ClientKeyFile = "", "", "", ""
		c.BBS.CACertFile, c.BBS.ClientCertFile, c.BBS.ClientKeyFile = "", "", ""
		c.BackendsTLS.CACertFiles, c.BackendsTLS.ClientCertFile, c.BackendsTLS.ClientKeyFile = nil, "", ""
		c.Metrics.CertFile, c.Metrics.KeyFile = "", ""
		c.StaticTargets = nil
		for _, e := range c.Validate() {
			msg := e.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, ": ") {
				t.Fatalf("problem is not one line naming a key: %q", msg)
			}
		}
	})
}
