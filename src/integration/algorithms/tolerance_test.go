package algorithms_test

import (
	"fmt"
	"net/http"
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

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

// linesWith returns the lines of log that contain s.
func linesWith(log, s string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

func output(s *gexec.Session) string { return string(s.Out.Contents()) + string(s.Err.Contents()) }

var _ = Describe("algorithm names x/crypto does not implement", func() {
	It("the ssh-proxy starts, warns once per list, and serves logins with the names it knows", func() {
		const appGUID = "b1b2c3d4-0000-4000-8000-000000000002"
		r := proxyrig.New(proxyrig.Options{
			ProxyBin: proxyBin, SSHDBin: sshdBin, CAName: "algorithms-ca", ClientSecret: "proxy-secret",
			AppGUID: appGUID, ProcessGUID: appGUID + "-p", InstanceGUID: "inst-2", Instances: 1,
			CellID: "cell-1", InstanceAddress: "10.0.0.2",
		})
		r.StartProxy(proxyrig.ProxyConfig{CommunicationTimeout: "5s", Extra: "allowed_ciphers: [rot13-cbc, aes256-ctr]\n" +
			"allowed_key_exchanges: [sntrup761x25519-sha512@openssh.com, curve25519-sha256]\n"})

		login := func(cipher string) proxyrig.Result {
			args := append(proxyrig.ClientOptions("", 10), "-o", "Ciphers="+cipher,
				"-p", strconv.Itoa(r.ProxyPort), "cf:"+appGUID+"/0@127.0.0.1", "echo", "served")
			return proxyrig.RunClient(r.Code(), nil, "ssh", args...)
		}
		res := login("aes256-ctr")
		Expect(res.Code).To(Equal(0), res.Stderr)
		Expect(res.Stdout).To(Equal("served\n"))
		// The list the operator wrote is what is offered, minus the unknown name.
		res = login("aes128-gcm@openssh.com")
		Expect(res.Code).NotTo(Equal(0))
		Expect(res.Stderr).To(ContainSubstring("no matching cipher"))

		log := output(r.Proxy)
		Expect(linesWith(log, "rot13-cbc")).To(ConsistOf(ContainSubstring("allowed_ciphers: ignoring cipher not implemented")))
		Expect(linesWith(log, "sntrup761x25519-sha512@openssh.com")).To(ConsistOf(ContainSubstring("allowed_key_exchanges: ignoring key exchange not implemented")))
	})

	It("the sshd starts as Cloud Controller runs it, warns once per list, and serves an OpenSSH login", func() {
		host, hostPEM := proxyrig.Ed25519Key()
		client, clientPEM := proxyrig.Ed25519Key()
		keyFile := filepath.Join(GinkgoT().TempDir(), "id")
		Expect(os.WriteFile(keyFile, []byte(clientPEM), 0o600)).To(Succeed())
		sshd, port := startSSHDAsCloudController(hostPEM, authorizedLine(client),
			"-logLevel=info", // the warning is at warn level; fatal (what Cloud Controller passes) hides it
			"-allowedCiphers=bogus-cipher,aes128-gcm@openssh.com",
			"-allowedMACs=umac-128-etm@openssh.com,hmac-sha2-512-etm@openssh.com",
			"-allowedKeyExchanges=curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com")

		ctx := exec.Command("ssh", "-F", "/dev/null", "-i", keyFile, "-o", "IdentitiesOnly=yes",
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "Ciphers=aes128-gcm@openssh.com", "-o", "KexAlgorithms=curve25519-sha256@libssh.org",
			"-p", strconv.Itoa(port), "vcap@127.0.0.1", "echo", "served")
		out, err := ctx.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("served"))
		Expect(sshd).NotTo(gexec.Exit())

		log := output(sshd)
		Expect(linesWith(log, "bogus-cipher")).To(ConsistOf(ContainSubstring("-allowedCiphers: ignoring cipher not implemented")))
		Expect(linesWith(log, "umac-128-etm@openssh.com")).To(ConsistOf(ContainSubstring("-allowedMACs: ignoring MAC not implemented")))
		Expect(linesWith(log, "sntrup761x25519-sha512@openssh.com")).To(HaveLen(1))
		Expect(log).To(ContainSubstring(ssh.FingerprintSHA256(host.PublicKey())))
	})

	It("the sshd still exits on a list without a single usable name, naming the flag", func() {
		client, _ := proxyrig.Ed25519Key()
		_, hostPEM := proxyrig.Ed25519Key()
		s, err := gexec.Start(exec.Command(sshdBin, "-address=127.0.0.1:0", "-hostKey="+hostPEM,
			"-authorizedKey="+authorizedLine(client), "-allowedMACs=umac-128-etm@openssh.com"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(s, 20*time.Second).Should(gexec.Exit(2))
		Expect(string(s.Err.Contents())).To(HavePrefix(`-allowedMACs: no listed MAC is implemented ("umac-128-etm@openssh.com")`))
	})
})

var _ = Describe("every login scheme off", func() {
	It("the ssh-proxy starts and refuses every login with a reason the user sees", func() {
		dir := GinkgoT().TempDir()
		_, hostPEM := proxyrig.Ed25519Key()
		key := filepath.Join(dir, "host_key")
		Expect(os.WriteFile(key, []byte(hostPEM), 0o600)).To(Succeed())
		port, health := proxyrig.FreePort(), proxyrig.FreePort()
		cfg := filepath.Join(dir, "ssh_proxy.yml")
		Expect(os.WriteFile(cfg, []byte(fmt.Sprintf("address: 127.0.0.1:%d\nhealth_check_address: 127.0.0.1:%d\n"+
			"host_key_files: [%s]\nenable_cf_auth: false\nenable_diego_auth: false\n", port, health, key)), 0o600)).To(Succeed())

		check, err := gexec.Start(exec.Command(proxyBin, "-check-config", cfg), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(check, 20*time.Second).Should(gexec.Exit(0))
		Expect(string(check.Err.Contents())).To(ContainSubstring("warning: enable_cf_auth: no login scheme is enabled"))

		proxy, err := gexec.Start(exec.Command(proxyBin, "-config", cfg), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { proxy.Kill().Wait(10 * time.Second) })
		Eventually(func() (int, error) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", health))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK))

		for _, user := range []string{"cf:b1b2c3d4-0000-4000-8000-000000000003/0", "diego:some-process/0", "web/0"} {
			args := append(proxyrig.ClientOptions("", 10), "-p", strconv.Itoa(port), user+"@127.0.0.1", "true")
			res := proxyrig.RunClient("any-password", nil, "ssh", args...)
			Expect(res.Code).NotTo(Equal(0), user)
			Expect(res.Stderr).To(ContainSubstring("ssh-proxy: logins are disabled on this proxy (no authentication scheme is enabled)"), user)
		}
		Expect(proxy).NotTo(gexec.Exit())
	})
})
