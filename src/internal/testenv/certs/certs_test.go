package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("test certificates", func() {
	var ca *certs.CA

	BeforeEach(func() {
		var err error
		ca, err = certs.NewCA("test-ca")
		Expect(err).NotTo(HaveOccurred())
	})

	It("makes a self-signed CA valid for about a day", func() {
		block, _ := pem.Decode(ca.CertPEM())
		Expect(block).NotTo(BeNil())
		c, err := x509.ParseCertificate(block.Bytes)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.IsCA).To(BeTrue())
		Expect(c.Subject.CommonName).To(Equal("test-ca"))
		Expect(c.CheckSignatureFrom(c)).To(Succeed())
		Expect(c.NotAfter.Sub(c.NotBefore)).To(BeNumerically("<=", 25*time.Hour))
	})

	It("issues leaves that verify for both server and client auth, with DNS and IP SANs", func() {
		kp, err := ca.Issue("bbs", "bbs.service.cf.internal", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		leaf, err := x509.ParseCertificate(kp.TLS.Certificate[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(leaf.DNSNames).To(ConsistOf("bbs.service.cf.internal"))
		Expect(leaf.IPAddresses).To(HaveLen(1))
		Expect(leaf.IPAddresses[0].String()).To(Equal("127.0.0.1"))
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			_, err = leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "bbs.service.cf.internal", KeyUsages: []x509.ExtKeyUsage{usage}})
			Expect(err).NotTo(HaveOccurred())
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.0.0.1"})
		Expect(err).NotTo(HaveOccurred())

		other, err := certs.NewCA("other")
		Expect(err).NotTo(HaveOccurred())
		_, err = leaf.Verify(x509.VerifyOptions{Roots: other.Pool()})
		Expect(err).To(HaveOccurred())
	})

	It("completes a mutual TLS handshake on 127.0.0.1", func() {
		server, err := ca.Issue("server", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		client, err := ca.Issue("client")
		Expect(err).NotTo(HaveOccurred())

		ln, err := tls.Listen("tcp", "127.0.0.1:0", certs.ServerTLS(server, ca.Pool()))
		Expect(err).NotTo(HaveOccurred())
		defer ln.Close()
		done := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- ""
				return
			}
			defer c.Close()
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.Handshake() != nil || len(tc.ConnectionState().PeerCertificates) == 0 {
				done <- ""
				return
			}
			done <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			_, _ = io.WriteString(tc, "x")
		}()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), certs.ClientTLS(ca.Pool(), client))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		Eventually(done, 10*time.Second).Should(Receive(Equal("client")))
	})

	It("writes PEM files into a directory", func() {
		dir := GinkgoT().TempDir()
		kp, err := ca.Issue("leaf", "localhost")
		Expect(err).NotTo(HaveOccurred())
		certFile, keyFile, err := kp.WriteFiles(dir, "leaf")
		Expect(err).NotTo(HaveOccurred())
		Expect(certFile).To(Equal(filepath.Join(dir, "leaf.crt")))
		Expect(keyFile).To(Equal(filepath.Join(dir, "leaf.key")))
		_, err = tls.LoadX509KeyPair(certFile, keyFile)
		Expect(err).NotTo(HaveOccurred())
		st, err := os.Stat(keyFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		caBytes, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(caBytes).To(Equal(ca.CertPEM()))

		caFile, err := ca.WriteFile(dir, "root")
		Expect(err).NotTo(HaveOccurred())
		Expect(caFile).To(Equal(filepath.Join(dir, "root.crt")))
		b, err := os.ReadFile(caFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(Equal(ca.CertPEM()))
	})
})
