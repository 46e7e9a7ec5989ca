package proxyconfig_test

import (
	"net/netip"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("hardening settings", func() {
	// hardeningErrors parses yaml and returns only the problems with hardening keys.
	hardeningErrors := func(yml string) []string {
		c, err := proxyconfig.Parse([]byte(yml))
		Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, e := range errorStrings(c.Validate()) {
			for _, k := range []string{"preauth_idle_timeout", "max_auth_tries", "max_connections", "max_unauthenticated_connections",
				"per_source_penalt", "keepalive.", "proxy_protocol.", "drain_timeout", "metrics."} {
				if len(e) >= len(k) && e[:len(k)] == k {
					out = append(out, e)
					break
				}
			}
		}
		return out
	}

	It("has safe defaults that validate", func() {
		d := proxyconfig.Default()
		Expect(d.HandshakeTimeout).To(Equal(120*time.Second), "OpenSSH's LoginGraceTime")
		Expect(d.PreauthIdleTimeout).To(BeNumerically(">=", 60*time.Second), "a person pasting a code")
		Expect(d.MaxUnauthenticatedConnections).To(Equal(proxyconfig.DefaultMaxUnauthenticated))
		Expect(d.MaxAuthTries).To(Equal(6))
		Expect(d.MaxConnectionDuration).To(BeZero())
		Expect(d.PerSourcePenalties.Enabled).To(BeTrue())
		Expect(d.ClientAddressesPreserved).To(BeFalse(), "penalties only where client addresses are known")
		Expect(d.ProxyProtocol.Enabled).To(BeFalse())
		Expect(d.Keepalive.Interval).To(Equal(30 * time.Second))
		Expect(d.Metrics.Address).To(BeEmpty())
		Expect(d.PenaltyConfig().Exempt).To(Equal([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}))
		Expect(hardeningErrors("")).To(BeEmpty())
	})

	It("loads every key", func() {
		c, err := proxyconfig.Parse([]byte(`
preauth_idle_timeout: 7s
max_auth_tries: 3
max_connections: 50
max_unauthenticated_connections: 20
client_addresses_preserved: true
max_connection_duration: 1h
per_source_penalties: {enabled: true, authfail: 2s, min: 6s, max: 1m, max_sources: 9, overflow: deny-all}
per_source_penalty_exempt_list: [10.0.0.0/8, 192.0.2.1]
keepalive: {interval: 3s, count_max: 2}
proxy_protocol: {enabled: true, allowed_cidrs: [10.1.0.0/16]}
drain_timeout: 90s
metrics: {address: 127.0.0.1:9100}
audit_log_file: /tmp/audit.log
`))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.PreauthIdleTimeout).To(Equal(7 * time.Second))
		Expect(c.MaxConnections).To(Equal(50))
		Expect(c.MaxUnauthenticatedConnections).To(Equal(20))
		Expect(c.ClientAddressesPreserved).To(BeTrue())
		Expect(c.MaxConnectionDuration).To(Equal(time.Hour))
		Expect(c.Keepalive).To(Equal(proxyconfig.Keepalive{Interval: 3 * time.Second, CountMax: 2}))
		Expect(c.ProxyProtocol.AllowedCIDRs).To(Equal([]string{"10.1.0.0/16"}))
		Expect(c.AuditLogFile).To(Equal("/tmp/audit.log"))
		pc := c.PenaltyConfig()
		Expect(pc.DenyAllOnOverflow).To(BeTrue())
		Expect(pc.MaxSources).To(Equal(9))
		Expect(pc.Exempt).To(Equal([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}))
		Expect(hardeningErrors("")).To(BeEmpty())
	})

	It("names each bad key on its own line", func() {
		errs := hardeningErrors(`
preauth_idle_timeout: -1s
max_auth_tries: 0
max_connections: -1
max_unauthenticated_connections: 0
per_source_penalties: {enabled: true, authfail: -1s, min: 20m, max: 10m, max_sources: 0, overflow: maybe}
per_source_penalty_exempt_list: [10.0.0.0/8, nonsense]
keepalive: {interval: 5s, count_max: 0}
proxy_protocol: {enabled: true, allowed_cidrs: []}
drain_timeout: -5s
metrics: {address: "nope", cert_file: /does/not/exist, key_file: /nor/this}
`)
		for _, want := range []string{
			"preauth_idle_timeout: must not be negative",
			"max_auth_tries: must be at least 1",
			"max_connections: must not be negative",
			"max_unauthenticated_connections: must be at least 1",
			"per_source_penalties.authfail: must not be negative",
			"per_source_penalties.min: must not exceed per_source_penalties.max",
			"per_source_penalties.max_sources: must be at least 1",
			"per_source_penalties.overflow: \"maybe\" is not permissive or deny-all",
			"per_source_penalty_exempt_list[1]: \"nonsense\" is not a CIDR or IP address",
			"keepalive.count_max: must be at least 1 when keepalive.interval is set",
			"proxy_protocol.allowed_cidrs: at least one CIDR is required when proxy_protocol.enabled is true",
			"drain_timeout: must not be negative",
			"metrics.address: ",
			"metrics.cert_file: ",
			"metrics.key_file: ",
		} {
			Expect(errs).To(ContainElement(HavePrefix(want)), "want %q in %q", want, errs)
		}
		for _, gone := range []string{"max_startups: 10:30:100", "per_source_penalties: {noauth: 1s}", "per_source_penalties: {grace_exceeded: 1s}"} {
			_, err := proxyconfig.Parse([]byte(gone))
			Expect(err).To(MatchError(ContainSubstring("unknown key")), gone)
		}
		c, err := proxyconfig.Parse([]byte("max_connection_duration: -1s"))
		Expect(err).NotTo(HaveOccurred())
		Expect(errorStrings(c.Validate())).To(ContainElement("max_connection_duration: must not be negative (0 = no limit)"))
		Expect(hardeningErrors("proxy_protocol: {allowed_cidrs: [10.0.0.0/8]}")).To(
			ConsistOf("proxy_protocol.allowed_cidrs: only meaningful when proxy_protocol.enabled is true"))
		Expect(hardeningErrors("proxy_protocol: {enabled: true, allowed_cidrs: [10.0.0.0/40]}")).To(
			ConsistOf(HavePrefix("proxy_protocol.allowed_cidrs[0]: ")))
		Expect(hardeningErrors("metrics: {cert_file: /x}")).To(
			ConsistOf("metrics.cert_file: only meaningful when metrics.address is set"))
	})

	It("builds the metrics TLS config from a usable pair", func() {
		dir := GinkgoT().TempDir()
		ca, err := certs.NewCA("ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("metrics", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		crt, key, err := kp.WriteFiles(dir, "metrics")
		Expect(err).NotTo(HaveOccurred())
		c := proxyconfig.Default()
		Expect(c.MetricsTLS()).To(BeNil())
		c.Metrics = proxyconfig.Metrics{Address: "127.0.0.1:0", CertFile: crt, KeyFile: key}
		Expect(hardeningErrors("metrics: {address: '127.0.0.1:0', cert_file: " + crt + ", key_file: " + key + "}")).To(BeEmpty())
		t, err := c.MetricsTLS()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Certificates).To(HaveLen(1))
		c.Metrics.KeyFile = filepath.Join(dir, "missing")
		_, err = c.MetricsTLS()
		Expect(err).To(HaveOccurred())
	})
})
