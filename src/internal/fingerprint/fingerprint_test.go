package fingerprint_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

func newKey() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	k, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return k
}

var _ = Describe("Fingerprint", func() {
	var key, other ssh.PublicKey
	BeforeEach(func() {
		key, other = newKey(), newKey()
	})

	It("agrees with x/crypto's own renderings", func() {
		Expect("SHA256:" + fingerprint.SHA256Base64(key)).To(Equal(ssh.FingerprintSHA256(key)))
		Expect("MD5:" + fingerprint.MD5Hex(key)).To(Equal("MD5:" + ssh.FingerprintLegacyMD5(key)))
		sum := sha1.Sum(key.Marshal())
		Expect(strings.ReplaceAll(fingerprint.SHA1Hex(key), ":", "")).To(Equal(hex.EncodeToString(sum[:])))
	})

	DescribeTable("parses each form and matches only its key",
		func(render func(ssh.PublicKey) string, alg fingerprint.Algorithm) {
			f, err := fingerprint.Parse(render(key))
			Expect(err).NotTo(HaveOccurred())
			Expect(f.Algorithm).To(Equal(alg))
			Expect(f.Matches(key)).To(BeTrue())
			Expect(f.Matches(other)).To(BeFalse())
		},
		Entry("MD5 colon-hex", fingerprint.MD5Hex, fingerprint.MD5),
		Entry("MD5 upper-case with prefix", func(k ssh.PublicKey) string { return "MD5:" + strings.ToUpper(fingerprint.MD5Hex(k)) }, fingerprint.MD5),
		Entry("SHA1 colon-hex", fingerprint.SHA1Hex, fingerprint.SHA1),
		Entry("SHA256 unpadded", fingerprint.SHA256Base64, fingerprint.SHA256),
		Entry("SHA256 padded", func(k ssh.PublicKey) string { return fingerprint.SHA256Base64(k) + "=" }, fingerprint.SHA256),
		Entry("SHA256 with prefix", ssh.FingerprintSHA256, fingerprint.SHA256),
	)

	It("round-trips through String", func() {
		for _, alg := range []fingerprint.Algorithm{fingerprint.MD5, fingerprint.SHA1, fingerprint.SHA256} {
			f := fingerprint.Compute(alg, key)
			g, err := fingerprint.Parse(f.String())
			Expect(err).NotTo(HaveOccurred())
			Expect(g).To(Equal(f))
		}
	})

	DescribeTable("rejects malformed input",
		func(s string, msg string) {
			_, err := fingerprint.Parse(s)
			Expect(err).To(MatchError(ContainSubstring(msg)))
		},
		Entry("empty", "  ", "empty"),
		Entry("short hex", "aa:bb:cc", "MD5"),
		Entry("bad hex digit", "zz"+strings.Repeat(":00", 15), "two hex digits"),
		Entry("three-digit byte", "aaa"+strings.Repeat(":00", 15), "two hex digits"),
		Entry("SHA1 labelled MD5", "MD5:"+strings.Repeat("00:", 19)+"00", "MD5 fingerprint has 20 bytes"),
		Entry("SHA256 wrong length", "SHA256:abcd", "43 or 44"),
		Entry("SHA256 not base64", strings.Repeat("!", 43), "not base64"),
		Entry("SHA256 prefix on hex", "SHA256:"+strings.Repeat("00:", 15)+"00", "43 or 44"),
	)

	It("never matches when unparsed", func() {
		Expect(fingerprint.Fingerprint{}.Matches(key)).To(BeFalse())
	})
})
