package proxyconfig_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("the loggregator section", func() {
	var dir, caFile, crt, key string

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		ca, err := certs.NewCA("loggregator")
		Expect(err).NotTo(HaveOccurred())
		caFile, err = ca.WriteFile(dir, "ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("metron", "metron")
		Expect(err).NotTo(HaveOccurred())
		crt, key, err = kp.WriteFiles(dir, "client")
		Expect(err).NotTo(HaveOccurred())
	})

	validate := func(l proxyconfig.Loggregator) []string {
		cfg := proxyconfig.Default()
		cfg.Loggregator = l
		var out []string
		for _, e := range cfg.Validate() {
			if s := e.Error(); len(s) > 12 && s[:12] == "loggregator." {
				out = append(out, s)
			}
		}
		return out
	}

	It("is off by default, addressed at localhost:3458 as the ssh_proxy source", func() {
		l := proxyconfig.Default().Loggregator
		Expect(l).To(Equal(proxyconfig.Loggregator{Address: "localhost:3458", SourceID: "ssh_proxy"}))
		cfg, err := proxyconfig.Parse([]byte("loggregator:\n  enabled: true\n  ca_cert_file: /a\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Loggregator).To(Equal(proxyconfig.Loggregator{Enabled: true, Address: "localhost:3458",
			SourceID: "ssh_proxy", CACertFile: "/a"}))
	})

	It("checks nothing while disabled", func() {
		Expect(validate(proxyconfig.Loggregator{CACertFile: "/nope"})).To(BeEmpty())
	})

	It("accepts readable, matching certificates", func() {
		Expect(validate(proxyconfig.Loggregator{Enabled: true, Address: "localhost:3458", SourceID: "ssh_proxy",
			CACertFile: caFile, CertFile: crt, KeyFile: key})).To(BeEmpty())
	})

	It("names each missing or unreadable certificate file", func() {
		unreadable := filepath.Join(dir, "unreadable")
		Expect(os.WriteFile(unreadable, []byte("x"), 0o000)).To(Succeed())
		if os.Geteuid() == 0 {
			unreadable = dir // root reads anything; a directory cannot be read as a file
		}
		Expect(validate(proxyconfig.Loggregator{Enabled: true, Address: "localhost:3458", SourceID: "ssh_proxy",
			CACertFile: filepath.Join(dir, "missing.crt"), KeyFile: unreadable})).To(ConsistOf(
			"loggregator.ca_cert_file: open "+filepath.Join(dir, "missing.crt")+": no such file or directory",
			"loggregator.cert_file: must be set when loggregator.enabled is true",
			HavePrefix("loggregator.key_file: read "+unreadable),
		))
	})

	It("names a key that does not pair with the certificate, a CA file without a certificate, and a bad address", func() {
		Expect(validate(proxyconfig.Loggregator{Enabled: true, Address: "localhost", SourceID: "ssh_proxy",
			CACertFile: key, CertFile: crt, KeyFile: caFile})).To(ConsistOf(
			HavePrefix("loggregator.address: "),
			"loggregator.ca_cert_file: no PEM certificate in file",
			HavePrefix("loggregator.cert_file: does not pair with loggregator.key_file: "),
		))
	})
})
