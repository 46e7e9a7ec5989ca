package sshdconfig_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
)

func authorizedLine() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	k, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func keys(ps []sshdconfig.Problem) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

var _ = Describe("sshd config", func() {
	It("has diego-sshd's defaults", func() {
		c := sshdconfig.Default()
		Expect(c.Address).To(Equal("127.0.0.1:2222"))
		Expect(c.KeepaliveInterval).To(Equal(15 * time.Second))
		Expect(c.KeepaliveCountMax).To(Equal(3))
		Expect(c.IdleTimeout).To(BeZero())
		Expect(c.GatewayPorts).To(Equal("no"), "OpenSSH's GatewayPorts default: -R binds loopback")
	})

	It("parses the documented file", func() {
		line := authorizedLine()
		c, probs := sshdconfig.Parse([]byte(`
address: 0.0.0.0:2022
host_key_file: ""
authorized_keys: ["` + line + `"]
allow_unauthenticated_clients: false
inherit_daemon_env: true
allowed_ciphers: [aes128-gcm@openssh.com]
allowed_macs: []
allowed_key_exchanges: [curve25519-sha256]
allowed_host_key_algorithms: [ssh-ed25519]
idle_timeout: 5m
keepalive_interval: 30s
keepalive_count_max: 5
log_level: debug
gateway_ports: clientspecified
`))
		Expect(probs).To(BeEmpty())
		Expect(c.GatewayPorts).To(Equal("clientspecified"))
		Expect(c.IdleTimeout).To(Equal(5 * time.Minute))
		Expect(c.KeepaliveInterval).To(Equal(30 * time.Second))
		Expect(c.KeepaliveCountMax).To(Equal(5))
		Expect(c.InheritDaemonEnv).To(BeTrue())
		r, vp := c.Validate(sshdconfig.YAMLNames)
		Expect(vp).To(BeEmpty())
		Expect(r.Ephemeral).To(BeTrue())
		Expect(r.AuthorizedKeys).To(HaveLen(1))
		Expect(r.HostKey.PublicKey().Type()).To(Equal("ssh-ed25519"))
	})

	It("names unknown keys and type errors", func() {
		_, probs := sshdconfig.Parse([]byte("adress: x\n"))
		Expect(probs).To(HaveLen(1))
		Expect(probs[0]).To(ContainSubstring("adress"))
		_, probs = sshdconfig.Parse([]byte("idle_timeout: soon\n"))
		Expect(probs).NotTo(BeEmpty())
	})

	It("reports every problem with its key", func() {
		c := sshdconfig.Default()
		c.Address = "nowhere"
		c.LogLevel = "loud"
		c.IdleTimeout = -time.Second
		c.KeepaliveInterval = -time.Second
		c.KeepaliveCountMax = 0
		c.AllowedCiphers = []string{"rot13"}
		c.AllowedMACs = []string{""}
		c.AllowedKeyExchanges = []string{"nope"}
		c.AuthorizedKeys = []string{"ssh-ed25519 !!!"}
		c.HostKeyFile = "/nonexistent"
		c.GatewayPorts = "sometimes"
		_, probs := c.Validate(sshdconfig.YAMLNames)
		Expect(keys(probs)).To(ConsistOf("address", "log_level", "idle_timeout", "keepalive_interval",
			"keepalive_count_max", "allowed_ciphers", "allowed_macs", "allowed_key_exchanges",
			"authorized_keys", "host_key_file", "gateway_ports"))
	})

	It("requires an authorized key unless unauthenticated clients are allowed", func() {
		c := sshdconfig.Default()
		_, probs := c.Validate(sshdconfig.YAMLNames)
		Expect(keys(probs)).To(Equal([]string{"authorized_keys"}))
		c.AllowUnauthenticatedClients = true
		_, probs = c.Validate(sshdconfig.YAMLNames)
		Expect(probs).To(BeEmpty())
	})

	It("refuses two keys in one authorized_keys entry", func() {
		c := sshdconfig.Default()
		c.AuthorizedKeys = []string{authorizedLine() + "\n" + authorizedLine()}
		_, probs := c.Validate(sshdconfig.YAMLNames)
		Expect(keys(probs)).To(Equal([]string{"authorized_keys"}))
	})

	It("loads host keys from PEM or file and restricts RSA signature algorithms", func() {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		block, err := ssh.MarshalPrivateKey(priv, "")
		Expect(err).NotTo(HaveOccurred())
		pemText := pem.EncodeToMemory(block)
		path := filepath.Join(GinkgoT().TempDir(), "host_key")
		Expect(os.WriteFile(path, pemText, 0o600)).To(Succeed())

		c := sshdconfig.Default()
		c.AllowUnauthenticatedClients = true
		c.HostKeyFile = path
		c.AllowedHostKeyAlgorithms = []string{"rsa-sha2-512"}
		r, probs := c.Validate(sshdconfig.YAMLNames)
		Expect(probs).To(BeEmpty())
		Expect(r.Ephemeral).To(BeFalse())
		ms, ok := r.HostKey.(ssh.MultiAlgorithmSigner)
		Expect(ok).To(BeTrue())
		Expect(ms.Algorithms()).To(Equal([]string{"rsa-sha2-512"}))

		// A list the RSA key cannot sign with falls back to the defaults (never a crash loop).
		c.AllowedHostKeyAlgorithms = []string{"ssh-ed25519"}
		r, probs = c.Validate(sshdconfig.YAMLNames)
		Expect(probs).To(BeEmpty())
		Expect(r.HostKey.(ssh.MultiAlgorithmSigner).Algorithms()).To(Equal([]string{"rsa-sha2-512", "rsa-sha2-256"}))
		Expect(r.Warnings).To(ConsistOf(HavePrefix("allowed_host_key_algorithms: the ssh-rsa host key cannot sign with any listed algorithm")))

		// Unset: the defaults, which leave out the SHA-1 ssh-rsa signature.
		c.AllowedHostKeyAlgorithms = nil
		r, probs = c.Validate(sshdconfig.YAMLNames)
		Expect(probs).To(BeEmpty())
		Expect(r.Warnings).To(BeEmpty())
		Expect(r.HostKey.(ssh.MultiAlgorithmSigner).Algorithms()).To(Equal([]string{"rsa-sha2-512", "rsa-sha2-256"}))

		c.HostKeyFile = ""
		c.HostKeyPEM = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
		c.AllowedHostKeyAlgorithms = nil
		n := sshdconfig.YAMLNames
		n.HostKey = "-hostKey"
		_, probs = c.Validate(n)
		Expect(keys(probs)).To(Equal([]string{"-hostKey"}))
		Expect(probs[0].String()).NotTo(ContainSubstring("AAAA"))
	})

	DescribeTable("generates an ephemeral host key the allowed algorithms can use",
		func(alg, keyType string) {
			c := sshdconfig.Default()
			c.AllowUnauthenticatedClients = true
			c.AllowedHostKeyAlgorithms = []string{alg}
			r, probs := c.Validate(sshdconfig.YAMLNames)
			Expect(probs).To(BeEmpty())
			Expect(r.Ephemeral).To(BeTrue())
			Expect(r.HostKey.PublicKey().Type()).To(Equal(keyType))
		},
		Entry("ed25519", "ssh-ed25519", "ssh-ed25519"),
		Entry("rsa-sha2-256", "rsa-sha2-256", "ssh-rsa"),
		Entry("ecdsa p256", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
	)

	It("offers the named defaults when no list is given", func() {
		c := sshdconfig.Default()
		c.AllowUnauthenticatedClients = true
		r, probs := c.Validate(sshdconfig.YAMLNames)
		Expect(probs).To(BeEmpty())
		var sc ssh.Config
		r.SSHConfig(&sc)
		Expect(sc.KeyExchanges).To(Equal([]string{"mlkem768x25519-sha256", "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512"}))
		Expect(sc.Ciphers).To(Equal([]string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr"}))
		Expect(sc.MACs).To(Equal([]string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"}))
		Expect(r.HostKey.PublicKey().Type()).To(Equal("ssh-ed25519"))
	})

	It("drops unknown names with a warning naming the setting, and fails only on a list with no usable name", func() {
		c := sshdconfig.Default()
		c.AllowUnauthenticatedClients = true
		c.AllowedCiphers = []string{"rot13", "aes256-ctr"}
		c.AllowedMACs = []string{"hmac-sha2-256-etm@openssh.com", "umac-64@openssh.com", "umac-128@openssh.com"}
		n := sshdconfig.YAMLNames
		n.Ciphers = "-allowedCiphers"
		r, probs := c.Validate(n)
		Expect(probs).To(BeEmpty())
		Expect(r.Warnings).To(Equal([]string{
			`-allowedCiphers: ignoring cipher not implemented by golang.org/x/crypto/ssh: "rot13"`,
			`allowed_macs: ignoring MACs not implemented by golang.org/x/crypto/ssh: "umac-64@openssh.com", "umac-128@openssh.com"`,
		}))
		var sc ssh.Config
		r.SSHConfig(&sc)
		Expect(sc.Ciphers).To(Equal([]string{"aes256-ctr"}))
		Expect(sc.MACs).To(Equal([]string{"hmac-sha2-256-etm@openssh.com"}))

		c.AllowedKeyExchanges = []string{"sntrup761x25519-sha512@openssh.com"}
		_, probs = c.Validate(n)
		Expect(keys(probs)).To(Equal([]string{"allowed_key_exchanges"}))
		Expect(probs[0].Message).To(HavePrefix(`no listed key exchange is implemented ("sntrup761x25519-sha512@openssh.com")`))
	})

	It("splits diego-sshd comma lists", func() {
		Expect(sshdconfig.SplitList("")).To(BeEmpty())
		Expect(sshdconfig.SplitList("a, b,c")).To(Equal([]string{"a", "b", "c"}))
	})
})
