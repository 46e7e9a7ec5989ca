package uaa_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/uaa"
)

var _ = Describe("LoadTLS", func() {
	It("loads a CA file into the roots", func() {
		ca, err := certs.NewCA("uaa")
		Expect(err).NotTo(HaveOccurred())
		file, err := ca.WriteFile(GinkgoT().TempDir(), "uaa-ca")
		Expect(err).NotTo(HaveOccurred())
		cfg, err := uaa.LoadTLS(file, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.RootCAs.Equal(ca.Pool())).To(BeTrue())
		Expect(cfg.InsecureSkipVerify).To(BeFalse())
	})

	It("uses system roots without a file, and honours skip_cert_verify", func() {
		cfg, err := uaa.LoadTLS("", true)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.RootCAs).To(BeNil())
		Expect(cfg.InsecureSkipVerify).To(BeTrue())
	})

	It("names a missing or non-PEM file", func() {
		dir := GinkgoT().TempDir()
		_, err := uaa.LoadTLS(filepath.Join(dir, "nope.crt"), false)
		Expect(err).To(MatchError(ContainSubstring(filepath.Join(dir, "nope.crt"))))
		bad := filepath.Join(dir, "bad.crt")
		Expect(os.WriteFile(bad, []byte("x"), 0o600)).To(Succeed())
		_, err = uaa.LoadTLS(bad, false)
		Expect(err).To(MatchError(ContainSubstring(bad)))
	})
})
