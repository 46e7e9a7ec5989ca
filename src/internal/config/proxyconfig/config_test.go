package proxyconfig_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

func writeKey(dir, name string, key any) string {
	b, err := ssh.MarshalPrivateKey(key, "")
	Expect(err).NotTo(HaveOccurred())
	p := filepath.Join(dir, name)
	Expect(os.WriteFile(p, pem.EncodeToMemory(b), 0o600)).To(Succeed())
	return p
}

func errorStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

var _ = Describe("Config", func() {
	var (
		dir                              string
		rsaKey, edKey, caFile, crt, keyF string
	)

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		rsaKey = writeKey(dir, "rsa", rk)
		_, ek, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		edKey = writeKey(dir, "ed", ek)
		ca, err := certs.NewCA("ca")
		Expect(err).NotTo(HaveOccurred())
		caFile, err = ca.WriteFile(dir, "ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("client")
		Expect(err).NotTo(HaveOccurred())
		crt, keyF, err = kp.WriteFiles(dir, "client")
		Expect(err).NotTo(HaveOccurred())
	})

	good := func() string {
		return fmt.Sprintf(`
address: 127.0.0.1:2222
health_check_address: 127.0.0.1:2223
log_level: debug
host_key_files: [%[1]s, %[2]s]
allowed_ciphers: [aes128-gcm@openssh.com, chacha20-poly1305@openssh.com]
allowed_macs: [hmac-sha2-256-etm@openssh.com]
allowed_key_exchanges: [curve25519-sha256]
allowed_host_key_algorithms: [ssh-ed25519, rsa-sha2-256]
idle_connection_timeout: 5m
communication_timeout: 3s
enable_cf_auth: true
enable_diego_auth: true
diego_credentials: secret
uaa:
  token_url: https://127.0.0.1:1/oauth/token
  client_id: ssh-proxy
  client_secret: s
  ca_cert_file: %[3]s
cc:
  internal_url: https://127.0.0.1:2
  ca_cert_file: %[3]s
bbs:
  address: https://127.0.0.1:3
  ca_cert_file: %[3]s
  client_cert_file: %[4]s
  client_key_file: %[5]s
backends_tls:
  enabled: true
  ca_cert_files: [%[3]s]
  client_cert_file: %[4]s
  client_key_file: %[5]s
static_targets: []
`, rsaKey, edKey, caFile, crt, keyF)
	}

	It("loads and accepts a complete file", func() {
		p := filepath.Join(dir, "ok.yml")
		Expect(os.WriteFile(p, []byte(good()), 0o600)).To(Succeed())
		cfg, err := proxyconfig.Load(p)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Validate()).To(BeEmpty())
		Expect(cfg.IdleConnectionTimeout).To(Equal(5 * time.Minute))
		Expect(cfg.CommunicationTimeout).To(Equal(3 * time.Second))
		Expect(cfg.HandshakeTimeout).To(Equal(120 * time.Second))
		Expect(cfg.BBS.ClientCertFile).To(Equal(crt))
		tc, err := cfg.BackendTLS()
		Expect(err).NotTo(HaveOccurred())
		Expect(tc.Certificates).To(HaveLen(1))
		Expect(tc.RootCAs).NotTo(BeNil())
		s, err := proxyconfig.LoadSigner(edKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.PublicKey().Type()).To(Equal(ssh.KeyAlgoED25519))
	})

	It("reads every PEM key of a key file, and names a broken one by its position", func() {
		both := filepath.Join(dir, "both")
		rsaPEM, err := os.ReadFile(rsaKey)
		Expect(err).NotTo(HaveOccurred())
		edPEM, err := os.ReadFile(edKey)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(both, append(append(rsaPEM, '\n'), edPEM...), 0o600)).To(Succeed())
		signers, err := proxyconfig.LoadSigners(both)
		Expect(err).NotTo(HaveOccurred())
		Expect(signers).To(HaveLen(2))
		Expect(signers[0].PublicKey().Type()).To(Equal(ssh.KeyAlgoRSA))
		Expect(signers[1].PublicKey().Type()).To(Equal(ssh.KeyAlgoED25519))
		_, err = proxyconfig.LoadSigner(both)
		Expect(err).To(MatchError("holds 2 private keys; one is expected"))

		broken := filepath.Join(dir, "broken")
		bad := pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: []byte("junk")})
		Expect(os.WriteFile(broken, append(append(rsaPEM, bad...), edPEM...), 0o600)).To(Succeed())
		_, err = proxyconfig.LoadSigners(broken)
		Expect(err).To(MatchError(HavePrefix("key 2: not a usable private key")))

		trailing := filepath.Join(dir, "trailing")
		Expect(os.WriteFile(trailing, append(rsaPEM, []byte("-----BEGIN OPENSSH PRIV")...), 0o600)).To(Succeed())
		_, err = proxyconfig.LoadSigners(trailing)
		Expect(err).To(MatchError("text after the last PEM private key"))
	})

	It("names an unknown key", func() {
		_, err := proxyconfig.Parse([]byte(good() + "adress: x\n"))
		Expect(err).To(MatchError(ContainSubstring("adress: unknown key")))
		_, err = proxyconfig.Parse([]byte("bbs:\n  adress: x\n"))
		Expect(err).To(MatchError(ContainSubstring("adress: unknown key")))
	})

	It("names a malformed duration", func() {
		_, err := proxyconfig.Parse([]byte("idle_connection_timeout: soon\n"))
		Expect(err).To(HaveOccurred())
	})

	It("reports one line per problem, naming each key", func() {
		notPEM := filepath.Join(dir, "notpem")
		Expect(os.WriteFile(notPEM, []byte("hello"), 0o600)).To(Succeed())
		bad := strings.NewReplacer(
			"address: 127.0.0.1:2222", "address: nope",
			edKey, notPEM,
			"aes128-gcm@openssh.com, chacha20-poly1305@openssh.com", "foo",
			"hmac-sha2-256-etm@openssh.com", "md7",
			"client_key_file: "+keyF, "client_key_file: "+filepath.Join(dir, "missing"),
			"log_level: debug", "log_level: loud\nlog_time_format: iso8601\ndebug_address: localhost",
			"diego_credentials: secret", "diego_credentials: \"\"",
			"token_url: https://127.0.0.1:1/oauth/token", "token_url: ftp://x",
		).Replace(good())
		cfg, err := proxyconfig.Parse([]byte(bad))
		Expect(err).NotTo(HaveOccurred())
		lines := errorStrings(cfg.Validate())
		Expect(lines).To(ContainElements(
			HavePrefix("address: "),
			Equal("host_key_files[1]: not a PEM private key"),
			HavePrefix(`allowed_ciphers: no listed cipher is implemented ("foo")`),
			HavePrefix(`allowed_macs: no listed MAC is implemented ("md7")`),
			And(HavePrefix("bbs.client_key_file: "), ContainSubstring("no such file")),
			And(HavePrefix("backends_tls.client_key_file: "), ContainSubstring("no such file")),
			HavePrefix("log_level: "),
			Equal(`log_time_format: unknown time format "iso8601" (want unix-epoch or rfc3339)`),
			HavePrefix("debug_address: "),
			HavePrefix("diego_credentials: "),
			HavePrefix("uaa.token_url: "),
		))
		for _, l := range lines {
			Expect(l).NotTo(ContainSubstring("\n"))
		}
	})

	It("defaults to lager's unix-epoch timestamps and no debug server, and accepts rfc3339", func() {
		d := proxyconfig.Default()
		Expect(d.LogTimeFormat).To(Equal("unix-epoch"))
		Expect(d.DebugAddress).To(BeEmpty())
		cfg, err := proxyconfig.Parse([]byte(strings.Replace(good(), "log_level: debug", "log_level: debug\nlog_time_format: rfc3339\ndebug_address: 127.0.0.1:17016", 1)))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Validate()).To(BeEmpty())
		Expect(cfg.LogTimeFormat).To(Equal("rfc3339"))
		Expect(cfg.DebugAddress).To(Equal("127.0.0.1:17016"))
	})

	It("requires host keys and BBS TLS", func() {
		cfg, err := proxyconfig.Parse([]byte("backends_tls: {allow_plaintext_fallback: true}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(errorStrings(cfg.Validate())).To(ContainElements(
			HavePrefix("host_key_files: "),
			HavePrefix("bbs.address: "),
			HavePrefix("bbs.ca_cert_file: "),
			HavePrefix("bbs.client_cert_file: "),
			HavePrefix("backends_tls.allow_plaintext_fallback: "),
		))
	})

	It("accepts every login scheme off (as upstream) with a warning, and needs no BBS then", func() {
		cfg, err := proxyconfig.Parse([]byte(fmt.Sprintf("host_key_files: [%s]\nenable_cf_auth: false\nenable_diego_auth: false\n", edKey)))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Validate()).To(BeEmpty())
		Expect(cfg.Warnings()).To(ConsistOf(HavePrefix("enable_cf_auth: no login scheme is enabled")))
	})

	Describe("algorithm lists", func() {
		parse := func(extra string) *proxyconfig.Config {
			cfg, err := proxyconfig.Parse([]byte(fmt.Sprintf("host_key_files: [%s, %s]\nenable_cf_auth: false\n%s", rsaKey, edKey, extra)))
			Expect(err).NotTo(HaveOccurred())
			return cfg
		}

		It("uses the named defaults when unset: no SHA-1, no NIST-curve key exchange, ETM MACs only", func() {
			cfg := parse("")
			Expect(cfg.Validate()).To(BeEmpty())
			Expect(cfg.Warnings()).To(HaveLen(1)) // only the "no login scheme" one
			sc := cfg.SSHConfig()
			Expect(sc.KeyExchanges).To(Equal([]string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512"}))
			Expect(sc.Ciphers).To(Equal([]string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"}))
			Expect(sc.MACs).To(Equal([]string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"}))
			Expect(cfg.HostKeyAlgorithms()).To(Equal([]string{"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"}))
		})

		It("drops names x/crypto does not implement, with one warning line per key, and keeps the rest in order", func() {
			cfg := parse("allowed_ciphers: [aes256-ctr, rot13-cbc, aes128-gcm@openssh.com, twofish-ctr]\n" +
				"allowed_key_exchanges: [curve25519-sha256@libssh.org, sntrup761x25519-sha512@openssh.com]\nallowed_macs: [hmac-sha1]\n")
			Expect(errorStrings(cfg.Validate())).NotTo(ContainElement(HavePrefix("allowed_")))
			Expect(cfg.Warnings()).To(HaveExactElements(
				`allowed_ciphers: ignoring ciphers not implemented by golang.org/x/crypto/ssh: "rot13-cbc", "twofish-ctr"`,
				`allowed_key_exchanges: ignoring key exchange not implemented by golang.org/x/crypto/ssh: "sntrup761x25519-sha512@openssh.com"`,
				HavePrefix("enable_cf_auth: no login scheme is enabled"),
			))
			sc := cfg.SSHConfig()
			Expect(sc.Ciphers).To(Equal([]string{"aes256-ctr", "aes128-gcm@openssh.com"}))
			Expect(sc.KeyExchanges).To(Equal([]string{"curve25519-sha256@libssh.org"}))
			Expect(sc.MACs).To(Equal([]string{"hmac-sha1"}), "an insecure name the operator lists is theirs to choose")
		})

		It("is fatal when no host key can sign with the listed host key algorithms", func() {
			cfg := parse("allowed_host_key_algorithms: [ecdsa-sha2-nistp256, made-up]\n")
			Expect(errorStrings(cfg.Validate())).To(ConsistOf(
				"allowed_host_key_algorithms: none of the host keys (ssh-rsa, ssh-ed25519) can sign with any of ecdsa-sha2-nistp256"))
		})

		It("is fatal only for a list with no usable name, naming the key", func() {
			cfg := parse("allowed_host_key_algorithms: [ssh-foo]\nallowed_key_exchanges: [\"\"]\n")
			Expect(errorStrings(cfg.Validate())).To(ConsistOf(
				HavePrefix(`allowed_host_key_algorithms: no listed host key algorithm is implemented ("ssh-foo")`),
				HavePrefix(`allowed_key_exchanges: no listed key exchange is implemented ("")`),
			))
		})
	})

	It("accepts an empty file as defaults (which then fail validation)", func() {
		cfg, err := proxyconfig.Parse(nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Address).To(Equal("0.0.0.0:2222"))
		Expect(cfg.Validate()).NotTo(BeEmpty())
	})
})
