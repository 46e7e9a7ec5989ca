package sshd_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"
)

func startBackground(cmd *exec.Cmd) *gexec.Session {
	sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		sess.Kill()
		Eventually(sess, cmdTimeout).Should(gexec.Exit())
	})
	return sess
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

var _ = Describe("port forwarding", func() {
	var (
		d   *daemon
		web *httptest.Server
	)

	BeforeEach(func() {
		d = startKeyed(nil)
		web = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", r.URL.Path)
		}))
		DeferCleanup(web.Close)
	})

	It("forwards ssh -L to a local HTTP server, dialled from the daemon's side", func() {
		webPort := strings.TrimPrefix(web.URL, "http://127.0.0.1:")
		lport := freePort()
		startBackground(d.sshCmd(clientKey.PrivateFile, []string{
			"-N", "-o", "ExitOnForwardFailure=yes",
			"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%s", lport, webPort),
		}))
		Eventually(func() (string, error) {
			return httpGet(fmt.Sprintf("http://127.0.0.1:%d/via-L", lport))
		}, cmdTimeout, 200*time.Millisecond).Should(Equal("hello from /via-L"))
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say(`"message":"sshd.direct-tcpip-opened"`))
	})

	It("round-trips ssh -R: a listener in the daemon reaches back to the client side", func() {
		webPort := strings.TrimPrefix(web.URL, "http://127.0.0.1:")
		sess := startBackground(d.sshCmd(clientKey.PrivateFile, []string{
			"-N", "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=INFO",
			"-R", "0:127.0.0.1:" + webPort,
		}))
		Eventually(sess.Err, cmdTimeout).Should(gbytes.Say(`Allocated port \d+ for remote forward`))
		m := regexp.MustCompile(`Allocated port (\d+)`).FindSubmatch(sess.Err.Contents())
		Expect(m).NotTo(BeNil())
		Eventually(func() (string, error) {
			return httpGet(fmt.Sprintf("http://127.0.0.1:%s/via-R", m[1]))
		}, cmdTimeout, 200*time.Millisecond).Should(Equal("hello from /via-R"))

		By("closing the listener when the connection ends")
		sess.Terminate()
		Eventually(sess, cmdTimeout).Should(gexec.Exit())
		Eventually(func() error {
			_, err := netDial(string(m[1]))
			return err
		}, cmdTimeout, 100*time.Millisecond).Should(HaveOccurred())
	})
})

// lyingSigner offers one public key but signs with another key: a client that merely knows an
// authorized public key.
type lyingSigner struct {
	pub  ssh.PublicKey
	real ssh.Signer
}

func (l lyingSigner) PublicKey() ssh.PublicKey { return l.pub }
func (l lyingSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return l.real.Sign(r, data)
}

var _ = Describe("authentication", func() {
	It("refuses a key that is not authorized", func() {
		d := startKeyed(nil)
		sess := run(d.sshCmd(otherKey.PrivateFile, nil, "true"))
		Expect(sess.ExitCode()).To(Equal(255))
		Expect(sess.Err).To(gbytes.Say("Permission denied"))
	})

	It("refuses an authorized public key offered without its private key (CVE-2024-45337 shape)", func() {
		d := startKeyed(nil)
		c, err := d.goClient(ssh.PublicKeys(lyingSigner{pub: clientKey.Signer.PublicKey(), real: otherKey.Signer}))
		if c != nil {
			c.Close()
		}
		Expect(err).To(HaveOccurred())
		Expect(d.session.Out).NotTo(gbytes.Say(`"message":"sshd.connection-opened"`))
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say(`"message":"sshd.handshake-failed"`))

		By("accepting the same public key when the signature is made with its private key")
		c, err = d.goClient(ssh.PublicKeys(clientKey.Signer))
		Expect(err).NotTo(HaveOccurred())
		c.Close()
	})

	It("lets clients in without authentication only with -allowUnauthenticatedClients", func() {
		d := startDaemon(nil, "-allowUnauthenticatedClients")
		sess := run(d.sshCmd("", nil, "echo no-auth-ok"))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(sess.Out).To(gbytes.Say("no-auth-ok"))

		keyed := startKeyed(nil)
		sess = run(keyed.sshCmd("", nil, "true"))
		Expect(sess.ExitCode()).To(Equal(255))
	})

	It("uses an ephemeral host key when -hostKey is empty", func() {
		d := startDaemon(nil, "-hostKey=", "-authorizedKey="+clientKey.AuthorizedKey)
		Expect(d.session.Out).To(gbytes.Say(`"ephemeral_host_key":true`))
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, "true"))
		Expect(sess.ExitCode()).To(Equal(0))
	})
})

var _ = Describe("algorithm restrictions", func() {
	It("refuses a disallowed cipher and key exchange while allowed ones work", func() {
		d := startKeyed(nil,
			"-allowedCiphers=aes256-gcm@openssh.com,chacha20-poly1305@openssh.com",
			"-allowedKeyExchanges=curve25519-sha256",
			"-allowedMACs=hmac-sha2-256-etm@openssh.com")

		ok := run(d.sshCmd(clientKey.PrivateFile, []string{"-c", "aes256-gcm@openssh.com", "-o", "KexAlgorithms=curve25519-sha256"}, "true"))
		Expect(ok.ExitCode()).To(Equal(0))

		badCipher := run(d.sshCmd(clientKey.PrivateFile, []string{"-c", "aes128-ctr", "-o", "LogLevel=INFO"}, "true"))
		Expect(badCipher.ExitCode()).To(Equal(255))
		Expect(badCipher.Err).To(gbytes.Say("no matching cipher"))

		badKex := run(d.sshCmd(clientKey.PrivateFile, []string{"-o", "KexAlgorithms=diffie-hellman-group14-sha256", "-o", "LogLevel=INFO"}, "true"))
		Expect(badKex.ExitCode()).To(Equal(255))
		Expect(badKex.Err).To(gbytes.Say("no matching key exchange"))

		badMAC := run(d.sshCmd(clientKey.PrivateFile, []string{"-c", "aes128-ctr,aes256-gcm@openssh.com", "-o", "MACs=hmac-sha1", "-o", "LogLevel=INFO"}, "true"))
		Expect(badMAC.ExitCode()).To(Equal(0), "an AEAD cipher needs no MAC")
	})
})

var _ = Describe("command line and config file", func() {
	runDaemon := func(args ...string) *gexec.Session {
		cmd := exec.Command(sshdPath, args...)
		cmd.Env = []string{"HOME=" + GinkgoT().TempDir(), "PATH=" + os.Getenv("PATH")}
		return run(cmd)
	}
	expectOneLineNaming := func(sess *gexec.Session, name string) {
		Expect(sess.ExitCode()).To(Equal(2))
		lines := strings.Split(strings.TrimSpace(string(sess.Err.Contents())), "\n")
		Expect(lines).To(HaveLen(1), string(sess.Err.Contents()))
		Expect(lines[0]).To(ContainSubstring(name))
	}

	DescribeTable("a bad flag value exits 2 with one line naming the flag",
		func(flagName string, args ...string) {
			sess := runDaemon(args...)
			expectOneLineNaming(sess, flagName)
			Expect(string(sess.Err.Contents())).NotTo(ContainSubstring("PRIVATE KEY"))
		},
		Entry("malformed -hostKey", "-hostKey", "-hostKey=-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n", "-allowUnauthenticatedClients"),
		Entry("malformed -authorizedKey", "-authorizedKey", "-authorizedKey=ssh-ed25519 not-base64!"),
		Entry("unknown cipher", "-allowedCiphers", "-allowUnauthenticatedClients", "-allowedCiphers=rot13"),
		Entry("unknown MAC", "-allowedMACs", "-allowUnauthenticatedClients", "-allowedMACs=crc32"),
		Entry("unknown key exchange", "-allowedKeyExchanges", "-allowUnauthenticatedClients", "-allowedKeyExchanges=dh-none"),
		Entry("unknown host key algorithm", "-allowedHostKeyAlgorithms", "-allowUnauthenticatedClients", "-allowedHostKeyAlgorithms=ssh-nope"),
		Entry("unknown log level", "-logLevel", "-allowUnauthenticatedClients", "-logLevel=loud"),
		Entry("bad address", "-address", "-allowUnauthenticatedClients", "-address=nowhere"),
		Entry("bad boolean", "-inheritDaemonEnv", "-inheritDaemonEnv=maybe"),
		Entry("no authorized key and no -allowUnauthenticatedClients", "-authorizedKey"),
	)

	It("prints the version", func() {
		sess := runDaemon("-version")
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(strings.TrimSpace(string(sess.Out.Contents()))).NotTo(BeEmpty())
	})

	It("checks config files: exit 0 when valid, 2 with one line per problem naming the key", func() {
		dir := GinkgoT().TempDir()
		good := filepath.Join(dir, "good.yml")
		Expect(os.WriteFile(good, []byte("address: 127.0.0.1:0\nauthorized_keys:\n- "+strings.TrimSpace(clientKey.AuthorizedKey)+"\nidle_timeout: 5m\n"), 0o644)).To(Succeed())
		Expect(runDaemon("-check-config", good).ExitCode()).To(Equal(0))

		bad := filepath.Join(dir, "bad.yml")
		Expect(os.WriteFile(bad, []byte("address: nowhere\nauthorized_keys: []\nallowed_ciphers: [rot13]\nkeepalive_count_max: 0\nhost_key_file: /nonexistent/key\n"), 0o644)).To(Succeed())
		sess := runDaemon("-check-config", bad)
		Expect(sess.ExitCode()).To(Equal(2))
		errText := string(sess.Err.Contents())
		for _, key := range []string{"address", "authorized_keys", "allowed_ciphers", "keepalive_count_max", "host_key_file"} {
			Expect(errText).To(MatchRegexp(`(?m)^` + key + `: `))
		}
		Expect(strings.Split(strings.TrimSpace(errText), "\n")).To(HaveLen(5))

		typo := filepath.Join(dir, "typo.yml")
		Expect(os.WriteFile(typo, []byte("adress: 127.0.0.1:2222\n"), 0o644)).To(Succeed())
		sess = runDaemon("-check-config", typo)
		Expect(sess.ExitCode()).To(Equal(2))
		Expect(sess.Err).To(gbytes.Say("adress"))
	})

	It("lets explicitly given flags override the config file, and loads host_key_file", func() {
		dir := GinkgoT().TempDir()
		keyFile := filepath.Join(dir, "host_key")
		Expect(os.WriteFile(keyFile, []byte(hostKey.PrivatePEM), 0o600)).To(Succeed())
		cfg := filepath.Join(dir, "sshd.yml")
		Expect(os.WriteFile(cfg, []byte("address: 127.0.0.1:1\nhost_key_file: "+keyFile+"\nauthorized_keys:\n- "+strings.TrimSpace(otherKey.AuthorizedKey)+"\n"), 0o644)).To(Succeed())
		d := startDaemon(nil, "-config="+cfg, "-authorizedKey="+clientKey.AuthorizedKey)
		Expect(string(d.session.Out.Contents())).To(ContainSubstring(`"host_key_fingerprint":"` + ssh.FingerprintSHA256(hostKey.Signer.PublicKey()) + `"`))
		Expect(run(d.sshCmd(clientKey.PrivateFile, nil, "true")).ExitCode()).To(Equal(0))
		Expect(run(d.sshCmd(otherKey.PrivateFile, nil, "true")).ExitCode()).To(Equal(255))
	})
})

var _ = Describe("Cloud Controller's and diego-sshd's command lines", func() {
	It("serves with the flags as CC and diego-sshd pass them (double dashes, empty lists, -logLevel=fatal)", func() {
		port := itoa(freePort())
		home := GinkgoT().TempDir()
		cmd := exec.Command(sshdPath,
			"--allowedKeyExchanges=", "--address=127.0.0.1:"+port, "--allowUnauthenticatedClients=false",
			"--inheritDaemonEnv=true", "--allowedCiphers=", "--allowedMACs=", "--logLevel=fatal", "--debugAddr=",
			"--hostKey="+hostKey.PrivatePEM, "--authorizedKey="+clientKey.AuthorizedKey)
		cmd.Env = []string{"HOME=" + home, "USER=vcap", "PATH=" + os.Getenv("PATH")}
		sess := startBackground(cmd)
		Eventually(func() error {
			c, err := netDial(port)
			if err == nil {
				c.Close()
			}
			return err
		}, startTimeout, 100*time.Millisecond).Should(Succeed())
		d := &daemon{session: sess, port: port, home: home}
		out := run(d.sshCmd(clientKey.PrivateFile, nil, "echo cc-ok"))
		Expect(out.ExitCode()).To(Equal(0))
		Expect(out.Out).To(gbytes.Say("cc-ok"))
		Expect(string(sess.Out.Contents())).To(BeEmpty(), "fatal level logs nothing while healthy")
	})
})
