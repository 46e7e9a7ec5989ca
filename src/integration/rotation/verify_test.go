package rotation_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"

	"golang.org/x/crypto/ssh"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func signerFromPEM(pemText string) ssh.Signer {
	s, err := ssh.ParsePrivateKey([]byte(pemText))
	Expect(err).NotTo(HaveOccurred())
	return s
}

// fingerprintForms are the ways an operator may write the fingerprint of key.
func fingerprintForms(key ssh.PublicKey) map[string]string {
	sha := ssh.FingerprintSHA256(key) // "SHA256:" + unpadded base64
	bare := strings.TrimPrefix(sha, "SHA256:")
	md5 := ssh.FingerprintLegacyMD5(key)
	return map[string]string{
		"SHA256 prefixed, unpadded": sha,
		"SHA256 prefixed, padded":   sha + "=",
		"SHA256 bare, unpadded":     bare,
		"SHA256 bare, padded":       bare + "=",
		"MD5 colon-hex":             md5,
		"MD5 upper-case hex":        strings.ToUpper(md5),
		"MD5 prefixed":              "MD5:" + md5,
		"with surrounding space":    "  " + sha + "\n",
	}
}

var _ = Describe("scripts/verify-host-key", func() {
	It("accepts every fingerprint form of a presented key and refuses others, naming both", func() {
		_, edPriv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		ed, err := ssh.NewSignerFromKey(edPriv)
		Expect(err).NotTo(HaveOccurred())
		rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		rs, err := ssh.NewSignerFromKey(rsaPriv)
		Expect(err).NotTo(HaveOccurred())
		_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		other, err := ssh.NewSignerFromKey(otherPriv)
		Expect(err).NotTo(HaveOccurred())

		srv := startKeyServer(ed, rs) // RSA and ed25519 side by side
		for _, key := range []ssh.PublicKey{ed.PublicKey(), rs.PublicKey()} {
			for form, fp := range fingerprintForms(key) {
				code, out := verify(srv.Addr, fp)
				Expect(code).To(Equal(0), "%s %s: %s", key.Type(), form, out)
			}
		}
		for form, fp := range fingerprintForms(other.PublicKey()) {
			code, out := verify(srv.Addr, fp)
			Expect(code).To(Equal(1), "%s: %s", form, out)
			Expect(strings.Split(out, "\n")).To(HaveLen(1))
			Expect(out).To(ContainSubstring("host key mismatch for " + srv.Addr))
			if strings.Contains(strings.ToLower(form), "md5") {
				Expect(out).To(ContainSubstring("expected " + "MD5:" + ssh.FingerprintLegacyMD5(other.PublicKey())))
				Expect(out).To(ContainSubstring("MD5:" + ssh.FingerprintLegacyMD5(ed.PublicKey())))
			} else {
				Expect(out).To(ContainSubstring("expected " + ssh.FingerprintSHA256(other.PublicKey())))
				Expect(out).To(ContainSubstring(ssh.FingerprintSHA256(ed.PublicKey())))
				Expect(out).To(ContainSubstring(ssh.FingerprintSHA256(rs.PublicKey())))
			}
		}
	})

	DescribeTable("exits 2 on usage and connection errors",
		func(args []string, want string) {
			code, out := verify(args...)
			Expect(code).To(Equal(2), out)
			Expect(out).To(ContainSubstring(want))
		},
		Entry("no arguments", []string{}, "usage:"),
		Entry("one argument", []string{"127.0.0.1:2222"}, "usage:"),
		Entry("not a fingerprint", []string{"127.0.0.1:2222", "hello"}, "not an MD5"),
		Entry("short MD5", []string{"127.0.0.1:2222", "MD5:aa:bb:cc"}, "not an MD5"),
		Entry("bad port", []string{"127.0.0.1:http", "SHA256:" + strings.Repeat("A", 43)}, "bad port"),
		Entry("unbracketed IPv6", []string{"::1:22", "SHA256:" + strings.Repeat("A", 43)}, "brackets"),
	)

	It("exits 2 when nothing answers", func() {
		code, out := verify("127.0.0.1:"+itoa(closedPort()), "SHA256:"+strings.Repeat("A", 43))
		Expect(code).To(Equal(2), out)
		Expect(out).To(ContainSubstring("no host key from 127.0.0.1"))
	})
})

var _ = Describe("config-server as the variable store", func() {
	It("generates, reads back and regenerates type: ssh host keys; verify-host-key follows the server before and after", func() {
		cs := startConfigServer()

		By("refusing callers without a valid token")
		status, _ := cs.do(http.MethodGet, "/v1/data?name=diego_ssh_proxy_host_key", "", nil)
		Expect(status).To(Equal(http.StatusUnauthorized))
		status, _ = cs.do(http.MethodGet, "/v1/data?name=diego_ssh_proxy_host_key", cs.token+"x", nil)
		Expect(status).To(Equal(http.StatusUnauthorized))

		By("generating the current and next host keys")
		status, current := cs.generate("diego_ssh_proxy_host_key")
		Expect(status).To(Equal(http.StatusCreated))
		status, next := cs.generate("diego_ssh_proxy_host_key_next")
		Expect(status).To(Equal(http.StatusCreated))
		Expect(current.Value.PrivateKey).NotTo(Equal(next.Value.PrivateKey))

		By("a second generate keeps the value (as the director's no-overwrite does)")
		status, again := cs.generate("diego_ssh_proxy_host_key")
		Expect(status).To(Equal(http.StatusOK))
		Expect(again.Value).To(Equal(current.Value))
		Expect(cs.get("diego_ssh_proxy_host_key").Value).To(Equal(current.Value))

		curSigner := signerFromPEM(current.Value.PrivateKey)
		nextSigner := signerFromPEM(next.Value.PrivateKey)
		Expect(current.Value.PublicKeyFingerprint).To(Equal(ssh.FingerprintLegacyMD5(curSigner.PublicKey())))
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(current.Value.PublicKey))
		Expect(err).NotTo(HaveOccurred())
		Expect(pub.Marshal()).To(Equal(curSigner.PublicKey().Marshal()))

		By("before: the server presents the current key")
		before := startKeyServer(curSigner)
		expectMatch(before.Addr, current.Value.PublicKeyFingerprint)
		expectMatch(before.Addr, ssh.FingerprintSHA256(curSigner.PublicKey()))
		code, out := verify(before.Addr, next.Value.PublicKeyFingerprint)
		Expect(code).To(Equal(1), out)
		Expect(out).To(ContainSubstring("MD5:" + next.Value.PublicKeyFingerprint))
		Expect(out).To(ContainSubstring("MD5:" + current.Value.PublicKeyFingerprint))
		before.Close()

		By("regenerating the current key (the simple rotation)")
		rotated := cs.regenerate("diego_ssh_proxy_host_key")
		Expect(rotated.Value.PrivateKey).NotTo(Equal(current.Value.PrivateKey))
		Expect(cs.get("diego_ssh_proxy_host_key").Value).To(Equal(rotated.Value))
		Expect(cs.get("diego_ssh_proxy_host_key_next").Value).To(Equal(next.Value))

		By("after: a server with the regenerated key matches the new fingerprint only")
		after := startKeyServer(signerFromPEM(rotated.Value.PrivateKey))
		expectMatch(after.Addr, rotated.Value.PublicKeyFingerprint)
		code, out = verify(after.Addr, current.Value.PublicKeyFingerprint)
		Expect(code).To(Equal(1), out)

		By("staged: a server presenting the next key matches next's fingerprint in both forms")
		staged := startKeyServer(nextSigner)
		expectMatch(staged.Addr, next.Value.PublicKeyFingerprint)
		expectMatch(staged.Addr, ssh.FingerprintSHA256(nextSigner.PublicKey()))
	})
})

func expectMatch(addr, fp string) {
	GinkgoHelper()
	code, out := verify(addr, fp)
	Expect(code).To(Equal(0), "verify-host-key %s %s: %s", addr, fp, out)
}
