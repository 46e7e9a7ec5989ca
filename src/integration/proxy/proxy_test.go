package proxy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

// refusedWith asserts the client failed and printed the proxy's one-line reason.
func refusedWith(r result, reason string) {
	GinkgoHelper()
	Expect(r.code).NotTo(Equal(0), "stdout: %s", r.stdout)
	Expect(r.stderr).To(ContainSubstring("ssh-proxy: "+reason), "stderr: %s", r.stderr)
}

var _ = Describe("ssh-proxy with cf authentication", func() {
	var e *env

	BeforeEach(func() {
		e = newEnv()
		e.startProxy(proxyOpts{})
	})

	Describe("sessions", func() {
		It("runs a command and passes its output and exit status", func() {
			r := e.ssh(e.code(), nil, "echo hello from $((40+2))")
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(r.stdout).To(Equal("hello from 42\n"))

			r = e.ssh(e.code(), nil, "echo oops >&2; exit 7")
			Expect(r.code).To(Equal(7))
			Expect(r.stderr).To(ContainSubstring("oops"))
		})

		It("runs a shell fed from stdin", func() {
			r := e.ssh(e.code(), strings.NewReader("echo from-shell\nexit 4\n"), "-T")
			Expect(r.stdout).To(ContainSubstring("from-shell"))
			Expect(r.code).To(Equal(4))
		})

		It("allocates a pty when asked", func() {
			r := e.ssh(e.code(), nil, "-tt", "tty")
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(r.stdout).To(ContainSubstring("/dev/pts/"))
		})

		It("copies files both ways with scp", func() {
			src := filepath.Join(GinkgoT().TempDir(), "up.txt")
			Expect(os.WriteFile(src, []byte("scp payload\n"), 0o644)).To(Succeed())
			remote := filepath.Join(GinkgoT().TempDir(), "remote.txt")
			// scp and sftp cannot take a user name with a colon in user@host: cf documents -o User=.
			opts := append(e.clientOpts(), "-P", strconv.Itoa(e.proxyPort), "-o", "User="+e.user())
			r := runClient(e.code(), nil, "scp", append(opts, src, "127.0.0.1:"+remote)...)
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(os.ReadFile(remote)).To(Equal([]byte("scp payload\n")))

			back := filepath.Join(GinkgoT().TempDir(), "down.txt")
			r = runClient(e.code(), nil, "scp", append(opts, "127.0.0.1:"+remote, back)...)
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(os.ReadFile(back)).To(Equal([]byte("scp payload\n")))
		})

		It("transfers files with sftp", func() {
			local := GinkgoT().TempDir()
			remote := GinkgoT().TempDir()
			Expect(os.WriteFile(filepath.Join(local, "a.bin"), []byte(strings.Repeat("sftp!", 100000)), 0o644)).To(Succeed())
			batch := fmt.Sprintf("put %s %s\nls %s\nget %s %s\n",
				filepath.Join(local, "a.bin"), filepath.Join(remote, "a.bin"), remote,
				filepath.Join(remote, "a.bin"), filepath.Join(local, "b.bin"))
			opts := append(e.clientOpts(), "-P", strconv.Itoa(e.proxyPort), "-o", "User="+e.user())
			// Commands come from stdin: -b would imply BatchMode=yes and so no password prompt.
			r := runClient(e.code(), strings.NewReader(batch), "sftp", append(opts, "127.0.0.1")...)
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(r.stdout).To(ContainSubstring("a.bin"))
			Expect(os.ReadFile(filepath.Join(local, "b.bin"))).To(Equal([]byte(strings.Repeat("sftp!", 100000))))
		})

		It("forwards a local port with -L", func() {
			e.expectTunnel("-L", "hello through the tunnel")
		})

		It("forwards a remote port with -R (channels opened by the container side)", func() {
			e.expectTunnel("-R", "hello from the client side")
		})

		It("logs who connected to what, never the code", func() {
			code := e.code()
			r := e.ssh(code, nil, "true")
			Expect(r.code).To(Equal(0), r.stderr)
			Eventually(e.proxyLog, 10*time.Second).Should(ContainSubstring("ssh-proxy.session-ended"))
			log := e.proxyLog()
			Expect(log).To(MatchRegexp(`"message":"ssh-proxy.session-started".*"user":"%s"`, uaastub.DefaultUserName))
			Expect(log).To(ContainSubstring(`"app_guid":"` + appGUID + `"`))
			Expect(log).To(ContainSubstring(`"process_guid":"` + processGUID + `"`))
			Expect(log).To(ContainSubstring(`"index":0`))
			Expect(log).To(ContainSubstring(`"instance_guid":"` + instanceGUID + `"`))
			Expect(log).To(MatchRegexp(`"remote_addr":"127\.0\.0\.1:\d+"`))
			Expect(log).NotTo(ContainSubstring(code))
			Expect(log).NotTo(ContainSubstring("PRIVATE KEY"))
		})

		It("releases its file descriptors after sessions end", func() {
			Expect(e.ssh(e.code(), nil, "true").code).To(Equal(0))
			Eventually(e.proxyLog, 10*time.Second).Should(ContainSubstring("ssh-proxy.session-ended"))
			baseline := e.openFDs()
			for range 5 {
				Expect(e.ssh(e.code(), nil, "echo x").code).To(Equal(0))
			}
			Expect(e.ssh("bogus", nil, "true").code).NotTo(Equal(0))
			Eventually(e.openFDs, 10*time.Second, 100*time.Millisecond).Should(BeNumerically("<=", baseline))
		})

		It("stops cleanly on SIGTERM", func() {
			e.terminateProxy()
			Eventually(e.proxy, 10*time.Second).Should(gexec.Exit(0))
			Expect(e.proxyLog()).To(ContainSubstring("ssh-proxy.exited"))
		})
	})

	Describe("refusals, each with its reason", func() {
		It("refuses a bad one-time code", func() {
			refusedWith(e.ssh("not-a-code", nil, "true"), "invalid or expired one-time code")
			Expect(e.proxyLog()).To(ContainSubstring(`"reason":"invalid or expired one-time code`))
			Expect(e.proxyLog()).NotTo(ContainSubstring("not-a-code"))
		})

		It("refuses a used code", func() {
			code := e.code()
			Expect(e.ssh(code, nil, "true").code).To(Equal(0))
			refusedWith(e.ssh(code, nil, "true"), "invalid or expired one-time code")
		})

		// Every other reason, each through the cf CLI's client and OpenSSH: refusals_test.go.
		It("reports an instance problem on the channel open, after authentication", func() {
			e.setRunning(bbs.StateCrashed)
			r := e.ssh(e.code(), nil, "true")
			Expect(r.code).To(Equal(255))
			Expect(r.stderr).To(ContainSubstring("channel 0: open failed: connect failed: instance 0 is CRASHED"), r.stderr)
		})

		It("refuses a user name it cannot parse", func() {
			args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "root@127.0.0.1", "true")
			refusedWith(runClient(e.code(), nil, "ssh", args...), "invalid user name: use cf:<app-guid>/<index>")
		})
	})
})

var _ = Describe("ssh-proxy with diego authentication", func() {
	It("admits diego:<process-guid>/<index> with the shared credentials only", func() {
		e := newEnv()
		e.startProxy(proxyOpts{diegoCredentials: "diego-shared-secret"})
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "diego:"+processGUID+"/0@127.0.0.1", "echo diego")
		r := runClient("diego-shared-secret", nil, "ssh", args...)
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("diego\n"))
		refusedWith(runClient("wrong-secret", nil, "ssh", args...), "invalid credentials")
		Expect(e.proxyLog()).NotTo(ContainSubstring("diego-shared-secret"))
		Expect(e.proxyLog()).NotTo(ContainSubstring("wrong-secret"))
	})

	It("refuses diego user names when diego authentication is off", func() {
		e := newEnv()
		e.startProxy(proxyOpts{})
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "diego:"+processGUID+"/0@127.0.0.1", "true")
		refusedWith(runClient("anything", nil, "ssh", args...), "this authentication scheme is not enabled")
	})
})

var _ = Describe("ssh-proxy with backends TLS", func() {
	var e *env
	BeforeEach(func() {
		e = newEnv()
	})

	It("reaches the instance through its TLS proxy port with mTLS", func() {
		e.startTLSFront(instanceGUID)
		e.startProxy(proxyOpts{backendsTLS: true})
		r := e.ssh(e.code(), nil, "echo over tls")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("over tls\n"))
		Expect(e.proxyLog()).To(ContainSubstring(`"backend_tls":true`))
	})

	It("refuses, without falling back to plaintext, when TLS fails", func() {
		e.startTLSFront("some-other-instance")
		e.startProxy(proxyOpts{backendsTLS: true})
		r := e.ssh(e.code(), nil, "true")
		Expect(r.stderr).To(ContainSubstring("open failed: connect failed: TLS to the instance failed"), r.stderr)
	})
})

var _ = Describe("ssh-proxy host-key announcements", func() {
	It("teaches OpenSSH (UpdateHostKeys) the next host key, and never the container's", func() {
		e := newEnv()
		nextKey, nextPEM := ed25519Key()
		e.startProxy(proxyOpts{nextHostKeyPEM: nextPEM})
		known := filepath.Join(GinkgoT().TempDir(), "known_hosts")
		opts := []string{
			"-F", "/dev/null", "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=accept-new",
			"-o", "UpdateHostKeys=yes", "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
			"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
			"-p", strconv.Itoa(e.proxyPort), e.user() + "@127.0.0.1",
		}
		for range 2 { // the first run records the presented key; the second may update
			r := runClient(e.code(), nil, "ssh", append(opts, "true")...)
			Expect(r.code).To(Equal(0), r.stderr)
		}
		content, err := os.ReadFile(known)
		Expect(err).NotTo(HaveOccurred())
		nextB64 := strings.Fields(string(ssh.MarshalAuthorizedKey(nextKey.PublicKey())))[1]
		sshdB64 := strings.Fields(string(ssh.MarshalAuthorizedKey(e.sshdHostKey.PublicKey())))[1]
		Expect(string(content)).To(ContainSubstring(nextB64))
		Expect(string(content)).NotTo(ContainSubstring(sshdB64))
	})
})

var _ = Describe("ssh-proxy -check-config", func() {
	It("accepts a good file", func() {
		e := newEnv()
		file := e.writeConfig(proxyOpts{backendsTLS: true})
		s, err := gexec.Start(exec.Command(proxyBin, "-check-config", file), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, 20*time.Second).Should(gexec.Exit(0))
	})

	It("names every bad key, one per line, and exits 2", func() {
		e := newEnv()
		file := e.writeConfig(proxyOpts{})
		good, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		bad := strings.Replace(string(good), "communication_timeout: 5s", "communication_timeout: 0s\nallowed_ciphers: [foo]", 1)
		bad = strings.Replace(bad, "client_key_file: ", "client_key_file: /nonexistent", 1)
		Expect(os.WriteFile(file, []byte(bad), 0o600)).To(Succeed())
		s, err := gexec.Start(exec.Command(proxyBin, "-check-config", file), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, 20*time.Second).Should(gexec.Exit(2))
		lines := strings.Split(strings.TrimSpace(string(s.Err.Contents())), "\n")
		Expect(lines).To(ContainElements(
			"communication_timeout: must be positive",
			HavePrefix(`allowed_ciphers: no listed cipher is implemented ("foo")`),
			HavePrefix("bbs.client_key_file: "),
		))

		Expect(os.WriteFile(file, append(good, []byte("colour: blue\n")...), 0o600)).To(Succeed())
		s, err = gexec.Start(exec.Command(proxyBin, "-check-config", file), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, 20*time.Second).Should(gexec.Exit(2))
		Expect(string(s.Err.Contents())).To(ContainSubstring("colour: unknown key"))
	})
})
