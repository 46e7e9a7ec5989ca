package proxyconfig_test

import (
	"net/netip"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("SSH over WebSocket settings", func() {
	// wsErrors parses yml and returns only the problems with the WebSocket keys (and address).
	wsErrors := func(yml string) []string {
		c, err := proxyconfig.Parse([]byte(yml))
		Expect(err).NotTo(HaveOccurred())
		var out []string
		for _, e := range errorStrings(validate(c)) {
			for _, k := range []string{"listen_ws_addr", "disable_tcp_listener", "ws.", "address:"} {
				if strings.HasPrefix(e, k) {
					out = append(out, e)
					break
				}
			}
		}
		return out
	}
	var crt, key, dir string
	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		ca, err := certs.NewCA("ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("ssh.example.test", "ssh.example.test")
		Expect(err).NotTo(HaveOccurred())
		crt, key, err = kp.WriteFiles(dir, "ws")
		Expect(err).NotTo(HaveOccurred())
	})

	It("is off by default, the TCP listener on", func() {
		d := proxyconfig.Default()
		Expect(d.ListenWSAddr).To(BeEmpty())
		Expect(d.DisableTCPListener).To(BeFalse())
		Expect(wsErrors("")).To(BeEmpty())
	})

	It("resolves the certificate and the trusted router networks once", func() {
		c, err := proxyconfig.Parse([]byte("listen_ws_addr: 127.0.0.1:0\ndisable_tcp_listener: true\naddress: ''\n" +
			"ws: {cert_file: " + crt + ", key_file: " + key + ", trusted_router_cidrs: [10.0.16.0/20, 10.1.2.3]}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(wsErrors("listen_ws_addr: 127.0.0.1:0\ndisable_tcp_listener: true\naddress: ''\n"+
			"ws: {cert_file: "+crt+", key_file: "+key+"}\n")).To(BeEmpty(), "address is not needed when the TCP listener is off")
		r := resolvedWS(c) // the rest of this config (no host key) does not resolve
		Expect(r.WSListener).NotTo(BeNil())
		Expect(r.WSListener.TLS.Certificates).To(HaveLen(1))
		Expect(r.WSListener.TrustedRouters).To(Equal([]netip.Prefix{netip.MustParsePrefix("10.0.16.0/20"), netip.MustParsePrefix("10.1.2.3/32")}))
	})

	It("names each bad key on its own line", func() {
		missing := filepath.Join(dir, "missing.crt")
		Expect(wsErrors("disable_tcp_listener: true")).To(ConsistOf(
			"disable_tcp_listener: true needs listen_ws_addr: without the WebSocket listener the proxy would accept no connections"))
		Expect(wsErrors("listen_ws_addr: 127.0.0.1:0")).To(ConsistOf(
			"ws.cert_file: must be set when listen_ws_addr is set", "ws.key_file: must be set when listen_ws_addr is set"))
		Expect(wsErrors("listen_ws_addr: 127.0.0.1:0\nws: {cert_file: " + missing + ", key_file: " + key + "}")).To(
			ConsistOf(And(HavePrefix("ws.cert_file: "), ContainSubstring(missing))))
		Expect(wsErrors("listen_ws_addr: nope\nws: {cert_file: " + crt + ", key_file: " + key + ", trusted_router_cidrs: [10.0.0.0/40]}")).To(
			ConsistOf(HavePrefix("listen_ws_addr: "), HavePrefix("ws.trusted_router_cidrs[0]: ")))
		Expect(wsErrors("ws: {cert_file: " + crt + ", trusted_router_cidrs: [10.0.0.0/8]}")).To(ConsistOf(
			"ws.cert_file: only meaningful when listen_ws_addr is set", "ws.trusted_router_cidrs: only meaningful when listen_ws_addr is set"))
	})
})
