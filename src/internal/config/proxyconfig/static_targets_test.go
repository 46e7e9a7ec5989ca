package proxyconfig_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

var _ = Describe("static targets", func() {
	var (
		dir, keyFile, keyPEM, authorized, fp string
		good                                 proxyconfig.StaticTarget
	)

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		_, k, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		keyFile = writeKey(dir, "login", k)
		b, err := os.ReadFile(keyFile)
		Expect(err).NotTo(HaveOccurred())
		keyPEM = string(b)
		s, err := ssh.NewSignerFromKey(k)
		Expect(err).NotTo(HaveOccurred())
		authorized = string(ssh.MarshalAuthorizedKey(s.PublicKey()))
		fp = "SHA256:" + fingerprint.SHA256Base64(s.PublicKey())
		good = proxyconfig.StaticTarget{
			Name: "web", Instances: []string{"127.0.0.1:2022", "10.0.0.2:2222"},
			HostFingerprint: fp, PrivateKeyFile: keyFile, AuthorizedKeys: []string{authorized},
		}
	})

	It("accepts a complete entry, with the key inline or in a file", func() {
		Expect(staticErrors([]proxyconfig.StaticTarget{good}, false)).To(BeEmpty())
		inline := good
		inline.Name, inline.PrivateKeyFile, inline.PrivateKey = "db", "", keyPEM
		inline.AuthorizedKeys = nil
		rs, errs := proxyconfig.ResolveStaticTargets([]proxyconfig.StaticTarget{good, inline}, true)
		Expect(errs).To(BeEmpty())
		want, err := ssh.ParsePrivateKey([]byte(keyPEM))
		Expect(err).NotTo(HaveOccurred())
		Expect(rs[0].LoginKey.PublicKey().Marshal()).To(Equal(want.PublicKey().Marshal()), "read from private_key_file")
		Expect(rs[1].LoginKey.PublicKey().Marshal()).To(Equal(want.PublicKey().Marshal()))
		Expect(rs[0].HostKey.String()).To(Equal(fp), "host_fingerprint, parsed")
		Expect(rs[0].Keys).To(HaveLen(1))
		Expect(rs[1].Keys).To(BeEmpty())
	})

	It("names every problem with its key, one line each", func() {
		bad := []proxyconfig.StaticTarget{
			{Name: "a/b", Instances: []string{"nohost", ":22"}, HostFingerprint: "zz", PrivateKeyFile: filepath.Join(dir, "missing"),
				User: "a b", AuthorizedKeys: []string{"ssh-ed25519 !!!"}},
			{Name: "web", PrivateKey: "junk", PrivateKeyFile: keyFile},
			{Name: "web"},
		}
		errs := errorStrings(staticErrors(bad, false))
		Expect(errs).To(ConsistOf(
			HavePrefix("static_targets[0].name: "),
			HavePrefix("static_targets[0].instances[0]: "),
			HavePrefix("static_targets[0].instances[1]: "),
			HavePrefix("static_targets[0].host_fingerprint: "),
			HavePrefix("static_targets[0].private_key_file: "),
			HavePrefix("static_targets[0].user: "),
			HavePrefix("static_targets[0].authorized_keys[0]: "),
			Equal("static_targets[1].instances: at least one host:port is required"),
			HavePrefix("static_targets[1].host_fingerprint: must be set"),
			Equal("static_targets[1].private_key_file: set either private_key_file or private_key, not both"),
			HavePrefix("static_targets[1].authorized_keys: empty and enable_diego_auth is false"),
			Equal(`static_targets[2].name: "web" is already the name of static_targets[1]`),
			Equal("static_targets[2].instances: at least one host:port is required"),
			HavePrefix("static_targets[2].host_fingerprint: must be set"),
			HavePrefix("static_targets[2].private_key_file: must be set"),
			HavePrefix("static_targets[2].authorized_keys: empty"),
		))
		for _, e := range errs {
			Expect(e).NotTo(ContainSubstring("\n"))
		}
	})

	It("reports a broken inline key under private_key without echoing it", func() {
		t := good
		t.PrivateKeyFile, t.PrivateKey = "", "-----BEGIN OPENSSH PRIVATE KEY-----\nsecretstuff\n-----END OPENSSH PRIVATE KEY-----\n"
		errs := errorStrings(staticErrors([]proxyconfig.StaticTarget{t}, false))
		Expect(errs).To(ConsistOf(HavePrefix("static_targets[0].private_key: ")))
		Expect(errs[0]).NotTo(ContainSubstring("secretstuff"))
	})

	It("refuses an encrypted key", func() {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		b, err := ssh.MarshalPrivateKeyWithPassphrase(k, "", []byte("pw"))
		Expect(err).NotTo(HaveOccurred())
		t := good
		t.PrivateKeyFile, t.PrivateKey = "", string(pem.EncodeToMemory(b))
		Expect(errorStrings(staticErrors([]proxyconfig.StaticTarget{t}, false))).To(
			ConsistOf("static_targets[0].private_key: private key is encrypted with a passphrase"))
	})

	It("only allows names usable in <target>/<index>", func() {
		for _, n := range []string{"web", "w-1.b_2", "9"} {
			Expect(proxyconfig.ValidStaticTargetName(n)).To(BeTrue(), n)
		}
		for _, n := range []string{"", "-w", "w:x", "w/x", "w x", string(make([]byte, 64))} {
			Expect(proxyconfig.ValidStaticTargetName(n)).To(BeFalse(), n)
		}
	})
})

var _ = Describe("static targets in the config file", func() {
	var dir, hostKey, loginKey string

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		_, hk, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		hostKey = writeKey(dir, "host", hk)
		_, lk, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		loginKey = writeKey(dir, "login", lk)
	})

	file := func(extra string) string {
		return "host_key_files: [" + hostKey + "]\nenable_cf_auth: false\n" + extra
	}

	It("loads a proxy that serves only static targets without any BBS settings", func() {
		cfg, err := proxyconfig.Parse([]byte(file(`static_targets:
- name: web
  instances: [127.0.0.1:2022]
  host_fingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
  private_key_file: ` + loginKey + `
  authorized_keys:
  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice
`)))
		Expect(err).NotTo(HaveOccurred())
		Expect(validate(cfg)).To(BeEmpty())
		Expect(cfg.UsesBBS()).To(BeFalse())
		Expect(cfg.StaticTargets).To(HaveLen(1))
		Expect(cfg.StaticTargets[0].Instances).To(Equal([]string{"127.0.0.1:2022"}))
	})

	It("names an unknown key inside a static target", func() {
		_, err := proxyconfig.Parse([]byte(file("static_targets:\n- name: web\n  adress: x\n")))
		Expect(err).To(MatchError(ContainSubstring("adress: unknown key")))
	})

	It("still wants the BBS when diego authentication is on next to static targets", func() {
		cfg, err := proxyconfig.Parse([]byte(file("enable_diego_auth: true\ndiego_credentials: pw\nstatic_targets:\n- name: web\n  instances: [127.0.0.1:2022]\n  host_fingerprint: \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\"\n  private_key_file: " + loginKey + "\n")))
		Expect(err).NotTo(HaveOccurred())
		Expect(errorStrings(validate(cfg))).To(ConsistOf(
			HavePrefix("bbs.address: "),
			HavePrefix("bbs.ca_cert_file: "),
			HavePrefix("bbs.client_cert_file: "),
			HavePrefix("bbs.client_key_file: "),
		))
	})

	It("starts a proxy with no login scheme at all (as upstream), warning that every login is refused", func() {
		cfg, err := proxyconfig.Parse([]byte(file("")))
		Expect(err).NotTo(HaveOccurred())
		Expect(validate(cfg)).To(BeEmpty())
		Expect(resolved(cfg).Warnings).To(ConsistOf(ContainSubstring("every login is refused")))
	})
})
