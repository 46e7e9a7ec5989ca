package cc_test

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/cc"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("LoadTLS", func() {
	var (
		dir              string
		ca               *certs.CA
		caFile, crt, key string
	)

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		var err error
		ca, err = certs.NewCA("cc")
		Expect(err).NotTo(HaveOccurred())
		caFile, err = ca.WriteFile(dir, "cc-ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("ssh-proxy")
		Expect(err).NotTo(HaveOccurred())
		crt, key, err = kp.WriteFiles(dir, "client")
		Expect(err).NotTo(HaveOccurred())
	})

	It("loads the CA and the optional client certificate", func() {
		cfg, err := cc.LoadTLS(caFile, crt, key, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.RootCAs.Equal(ca.Pool())).To(BeTrue())
		Expect(cfg.Certificates).To(HaveLen(1))

		cfg, err = cc.LoadTLS(caFile, "", "", true)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Certificates).To(BeEmpty())
		Expect(cfg.InsecureSkipVerify).To(BeTrue())
	})

	It("refuses half a key pair and names broken files", func() {
		_, err := cc.LoadTLS(caFile, crt, "", false)
		Expect(err).To(HaveOccurred())
		missing := filepath.Join(dir, "missing")
		_, err = cc.LoadTLS(missing, "", "", false)
		Expect(err).To(MatchError(ContainSubstring(missing)))
		_, err = cc.LoadTLS(caFile, crt, missing, false)
		Expect(err).To(MatchError(ContainSubstring(missing)))
	})
})
