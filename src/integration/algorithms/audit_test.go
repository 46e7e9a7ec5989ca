package algorithms_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

// unknownToAudit are the algorithms the packaged ssh-audit (2.5.0 in Debian) does not know
// and therefore reports as "[warn] unknown algorithm": the ML-KEM hybrid key exchange and
// OpenSSH's strict-KEX marker (the Terrapin countermeasure), which x/crypto always offers.
var unknownToAudit = []string{"mlkem768x25519-sha256", "kex-strict-s-v00@openssh.com"}

var (
	algLine   = regexp.MustCompile(`^\((\w+)\) (\S+)(?: \((\d+)-bit\))?\s+-- \[(\w+)\] (.*)$`)
	noteLine  = regexp.MustCompile("^\\s+`- \\[(\\w+)\\] (.*)$")
	plainLine = regexp.MustCompile(`^\((\w+)\) (.*)$`)
	unknownRE = regexp.MustCompile(`unknown algorithm\(s\) found!: (\S+?)\.?\s`)
)

// auditFindings reads ssh-audit's text report and returns every line that is a finding
// outside the accepted exceptions: a [fail] or [warn] note (on the algorithm's line or a
// continuation line), a recommendation, a CVE, or an unknown algorithm the exceptions do not
// name. rsaHostKey tolerates what ssh-audit says about the size of an RSA host key's modulus
// (the key is the operator's; docs/config-files.md explains).
func auditFindings(report string, rsaHostKey bool) []string {
	var findings []string
	var cat, name string
	tolerated := func(level, text string) bool {
		if level != "warn" && level != "fail" {
			return true
		}
		if cat == "kex" && slices.Contains(unknownToAudit, name) && text == "unknown algorithm" {
			return true
		}
		return rsaHostKey && cat == "key" && strings.HasPrefix(name, "rsa-sha2-") && strings.Contains(text, "modulus")
	}
	for _, line := range strings.Split(report, "\n") {
		if m := algLine.FindStringSubmatch(line); m != nil {
			cat, name = m[1], m[2]
			if !tolerated(m[4], m[5]) {
				findings = append(findings, line)
			}
			continue
		}
		if m := noteLine.FindStringSubmatch(line); m != nil {
			if !tolerated(m[1], m[2]) {
				findings = append(findings, fmt.Sprintf("(%s) %s: %s", cat, name, strings.TrimSpace(line)))
			}
			continue
		}
		if m := plainLine.FindStringSubmatch(line); m != nil {
			cat, name = m[1], ""
			switch {
			case cat == "rec" && rsaHostKey && strings.Contains(line, "modulus"):
			case cat == "rec", cat == "cve":
				findings = append(findings, line)
			case strings.Contains(line, "[fail]"), strings.Contains(line, "[warn]"):
				findings = append(findings, line)
			}
			continue
		}
		if m := unknownRE.FindStringSubmatch(line + " "); m != nil {
			for _, u := range strings.Split(m[1], ",") {
				if !slices.Contains(unknownToAudit, u) {
					findings = append(findings, "unknown to ssh-audit: "+u)
				}
			}
		}
	}
	return findings
}

// runAudit runs ssh-audit (no colours) against 127.0.0.1:port and returns its report, after
// checking it is a complete one.
func runAudit(port int) string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "ssh-audit", "-n", "-t", "30", "-p", strconv.Itoa(port), "127.0.0.1").CombinedOutput()
	Expect(ctx.Err()).NotTo(HaveOccurred(), "ssh-audit did not finish: %s", out)
	report := string(out)
	GinkgoWriter.Println(report)
	for _, section := range []string{"# key exchange algorithms", "# host-key algorithms", "# encryption algorithms", "# message authentication code algorithms"} {
		Expect(report).To(ContainSubstring(section), "not a complete ssh-audit report")
	}
	return report
}

func rsa2048PEM() string {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(block))
}

// startSSHDAsCloudController runs the sshd with the flags Cloud Controller gives diego-sshd
// in every app container (algorithm lists explicitly empty, fatal-only logging), plus extra.
func startSSHDAsCloudController(hostKeyPEM, authorizedKey string, extra ...string) (*gexec.Session, int) {
	GinkgoHelper()
	port := proxyrig.FreePort()
	args := append([]string{
		"-allowedKeyExchanges=", "-address=127.0.0.1:" + strconv.Itoa(port),
		"-allowUnauthenticatedClients=false", "-inheritDaemonEnv=true",
		"-allowedCiphers=", "-allowedMACs=", "-logLevel=fatal",
		"-hostKey=" + hostKeyPEM, "-authorizedKey=" + authorizedKey,
	}, extra...)
	s, err := gexec.Start(exec.Command(sshdBin, args...), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { s.Kill().Wait(10 * time.Second) })
	proxyrig.WaitForPort(port)
	return s, port
}

func authorizedLine(s ssh.Signer) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

var _ = Describe("ssh-audit of the default listeners", func() {
	hostKeys := map[string]func() string{
		"ed25519":  func() string { _, p := proxyrig.Ed25519Key(); return p },
		"RSA-2048": rsa2048PEM,
	}

	DescribeTable("the ssh-proxy with allowed_* unset",
		func(keyType string) {
			r := proxyrig.New(proxyrig.Options{
				ProxyBin: proxyBin, SSHDBin: sshdBin, CAName: "algorithms-ca", ClientSecret: "proxy-secret",
				AppGUID: "a1b2c3d4-0000-4000-8000-000000000001", ProcessGUID: "a1b2c3d4-0000-4000-8000-000000000001-p",
				InstanceGUID: "inst-1", Instances: 1, CellID: "cell-1", InstanceAddress: "10.0.0.1",
			})
			r.StartProxy(proxyrig.ProxyConfig{CommunicationTimeout: "5s", HostKeyPEM: hostKeys[keyType]()})
			report := runAudit(r.ProxyPort)
			Expect(auditFindings(report, keyType == "RSA-2048")).To(BeEmpty(), report)
			Expect(report).NotTo(ContainSubstring("(key) ssh-rsa"), "the SHA-1 host key signature is not offered")
		},
		Entry("ed25519 host key", "ed25519"),
		Entry("RSA-2048 host key", "RSA-2048"),
	)

	DescribeTable("the sshd as Cloud Controller starts it (empty algorithm flags)",
		func(keyType string) {
			client, _ := proxyrig.Ed25519Key()
			_, port := startSSHDAsCloudController(hostKeys[keyType](), authorizedLine(client))
			report := runAudit(port)
			Expect(auditFindings(report, keyType == "RSA-2048")).To(BeEmpty(), report)
		},
		Entry("ed25519 host key", "ed25519"),
		Entry("RSA-2048 host key", "RSA-2048"),
	)

	It("reports what the library defaults used to offer (the check can fail)", func() {
		client, _ := proxyrig.Ed25519Key()
		_, port := startSSHDAsCloudController(rsa2048PEM(), authorizedLine(client),
			"-allowedMACs=hmac-sha2-256-etm@openssh.com,hmac-sha1",
			"-allowedKeyExchanges=curve25519-sha256,ecdh-sha2-nistp256,diffie-hellman-group14-sha1",
			"-allowedHostKeyAlgorithms=rsa-sha2-256,ssh-rsa")
		findings := auditFindings(runAudit(port), true)
		Expect(findings).To(ContainElements(
			HavePrefix("(kex) ecdh-sha2-nistp256 "),
			HavePrefix("(kex) diffie-hellman-group14-sha1 "),
			HavePrefix("(mac) hmac-sha1 "),
			HavePrefix("(key) ssh-rsa (2048-bit) "),
			HavePrefix("(rec) -hmac-sha1 "),
		))
		Expect(findings).NotTo(ContainElement(ContainSubstring("curve25519-sha256 ")))
	})
})
