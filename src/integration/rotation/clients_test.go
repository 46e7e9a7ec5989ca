package rotation_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/app-ssh/app-ssh/internal/hostkeys"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// bosh runs bin/bosh with a deadline and returns stdout.
func bosh(args ...string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "bin", "bosh"), args...)
	cmd.Dir = repoRoot
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "bosh %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

func parseSigner(pemText string) ssh.Signer {
	GinkgoHelper()
	s, err := hostkeys.ParsePEM([]byte(pemText))
	Expect(err).NotTo(HaveOccurred())
	return s
}

// openssh is the real OpenSSH client with its own identity and known_hosts. user is the SSH
// user name it logs in as ("cf" when empty).
type openssh struct {
	identity, knownHosts string
	key                  ssh.Signer
	user                 string
}

func newOpenSSH() *openssh {
	dir := GinkgoT().TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	o := &openssh{identity: filepath.Join(dir, "id"), knownHosts: filepath.Join(dir, "known_hosts")}
	Expect(os.WriteFile(o.identity, pem.EncodeToMemory(block), 0o600)).To(Succeed())
	o.key, err = ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	return o
}

// knownAt rewrites known_hosts for addr with the keys known so far (each test server has its
// own port; a real proxy keeps its address across stages).
func (o *openssh) knownAt(addr string, keys []ssh.PublicKey) {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, k) + "\n")
	}
	Expect(os.WriteFile(o.knownHosts, []byte(b.String()), 0o600)).To(Succeed())
}

func (o *openssh) known() []ssh.PublicKey {
	data, err := os.ReadFile(o.knownHosts)
	Expect(err).NotTo(HaveOccurred())
	var keys []ssh.PublicKey
	for i := 0; i < 100 && len(bytes.TrimSpace(data)) > 0; i++ {
		_, _, k, _, rest, err := ssh.ParseKnownHosts(data)
		Expect(err).NotTo(HaveOccurred())
		keys = append(keys, k)
		data = rest
	}
	return keys
}

func (o *openssh) login(addr, command string) {
	GinkgoHelper()
	host, port, err := netSplit(addr)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", o.args(host, port, command)...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	Expect(string(out)).NotTo(ContainSubstring("IDENTIFICATION HAS CHANGED"))
}

// args are ssh's arguments for one strict, non-interactive login running command: only this
// client's identity and known_hosts count, and OpenSSH updates known_hosts from what the server
// announces (UpdateHostKeys).
func (o *openssh) args(host, port, command string) []string {
	user := o.user
	if user == "" {
		user = "cf"
	}
	return []string{"-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=yes",
		"-o", "UserKnownHostsFile=" + o.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HashKnownHosts=no", "-o", "CheckHostIP=no", "-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
		"-i", o.identity, "-p", port, "-l", user, host, command}
}
