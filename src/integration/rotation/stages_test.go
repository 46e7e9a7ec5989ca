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
	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/hostkeys"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rendered is what one stage's manifest gives the proxy and Cloud Controller.
type rendered struct {
	HostKey         string   // diego.ssh_proxy.host_key (presented)
	LinkFingerprint string   // diego.ssh_proxy.host_key_fingerprint (ssh_proxy link)
	NextHostKeys    []string // diego.ssh_proxy.next_host_keys (announced only)
	CCFingerprint   string   // cloud_controller_ng app_ssh.host_key_fingerprint
}

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

// render interpolates cf-deployment with our base ops files, one stage file and the variable
// values read back from config-server, the way the director would.
func render(varsFile, stageFile string) rendered {
	cf := cfDeploymentPath("cf-deployment.yml")
	args := []string{"int", cf,
		"-o", "operations/use-app-ssh-release.yml",
		"-o", "operations/enable-app-ssh.yml",
	}
	if stageFile != "" {
		args = append(args, "-o", stageFile)
	}
	args = append(args, "-l", varsFile)
	var proxy struct {
		Diego struct {
			SSHProxy struct {
				HostKey            string   `yaml:"host_key"`
				HostKeyFingerprint string   `yaml:"host_key_fingerprint"`
				NextHostKeys       []string `yaml:"next_host_keys"`
			} `yaml:"ssh_proxy"`
		} `yaml:"diego"`
	}
	Expect(yaml.Unmarshal(bosh(append(args, "--path", "/instance_groups/name=scheduler/jobs/name=ssh_proxy/properties")...), &proxy)).To(Succeed())
	var cc struct {
		HostKeyFingerprint string `yaml:"host_key_fingerprint"`
	}
	Expect(yaml.Unmarshal(bosh(append(args, "--path", "/instance_groups/name=api/jobs/name=cloud_controller_ng/properties/app_ssh")...), &cc)).To(Succeed())
	return rendered{
		HostKey:         proxy.Diego.SSHProxy.HostKey,
		LinkFingerprint: proxy.Diego.SSHProxy.HostKeyFingerprint,
		NextHostKeys:    proxy.Diego.SSHProxy.NextHostKeys,
		CCFingerprint:   cc.HostKeyFingerprint,
	}
}

func parseSigner(pemText string) ssh.Signer {
	GinkgoHelper()
	s, err := hostkeys.ParsePEM([]byte(pemText))
	Expect(err).NotTo(HaveOccurred())
	return s
}

func (r rendered) serve(user ssh.PublicKey) *sessionServer {
	var next []ssh.Signer
	for _, p := range r.NextHostKeys {
		next = append(next, parseSigner(p))
	}
	return startSessionServer([]ssh.Signer{parseSigner(r.HostKey)}, next, user)
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

func keyBlobs(keys ...ssh.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, string(k.Marshal()))
	}
	return out
}

var _ = Describe("rotation stages rendered from cf-deployment with config-server values", func() {
	It("keeps OpenSSH (UpdateHostKeys) and fingerprint checks working through stages 1, 2 and 3", func() {
		cs := startConfigServer()
		_, current := cs.generate("diego_ssh_proxy_host_key")
		_, next := cs.generate("diego_ssh_proxy_host_key_next")

		vars := map[string]any{}
		for _, name := range []string{"diego_ssh_proxy_host_key", "diego_ssh_proxy_host_key_next"} {
			v := cs.get(name).Value
			vars[name] = map[string]string{
				"private_key": v.PrivateKey, "public_key": v.PublicKey, "public_key_fingerprint": v.PublicKeyFingerprint,
			}
		}
		varsYAML, err := yaml.Marshal(vars)
		Expect(err).NotTo(HaveOccurred())
		varsFile := filepath.Join(GinkgoT().TempDir(), "vars.yml")
		Expect(os.WriteFile(varsFile, varsYAML, 0o600)).To(Succeed())
		curKey := parseSigner(current.Value.PrivateKey).PublicKey()
		nextKey := parseSigner(next.Value.PrivateKey).PublicKey()
		client := newOpenSSH()

		By("before: one key, presented and advertised")
		r := render(varsFile, "")
		Expect(r.HostKey).To(Equal(current.Value.PrivateKey))
		Expect(r.NextHostKeys).To(BeEmpty())
		Expect(r.CCFingerprint).To(Equal(current.Value.PublicKeyFingerprint))
		srv := r.serve(client.key.PublicKey())
		expectMatch(srv.Addr, r.CCFingerprint)
		srv.Close()

		By("stage 1: current presented and advertised, next announced; OpenSSH learns next")
		r = render(varsFile, "operations/rotate-host-key/stage1.yml")
		Expect(r.HostKey).To(Equal(current.Value.PrivateKey))
		Expect(r.NextHostKeys).To(Equal([]string{next.Value.PrivateKey}))
		Expect(r.CCFingerprint).To(Equal(current.Value.PublicKeyFingerprint))
		Expect(r.LinkFingerprint).To(Equal(current.Value.PublicKeyFingerprint))
		srv = r.serve(client.key.PublicKey())
		expectMatch(srv.Addr, r.CCFingerprint)
		client.knownAt(srv.Addr, []ssh.PublicKey{curKey})
		client.login(srv.Addr, "wait-for-proof")
		Expect(keyBlobs(client.known()...)).To(ConsistOf(keyBlobs(curKey, nextKey)))
		srv.Close()

		By("stage 2: next presented and advertised, old announced; strict OpenSSH accepts")
		r = render(varsFile, "operations/rotate-host-key/stage2.yml")
		Expect(r.HostKey).To(Equal(next.Value.PrivateKey))
		Expect(r.NextHostKeys).To(Equal([]string{current.Value.PrivateKey}))
		Expect(r.CCFingerprint).To(Equal(next.Value.PublicKeyFingerprint))
		Expect(r.LinkFingerprint).To(Equal(next.Value.PublicKeyFingerprint))
		srv = r.serve(client.key.PublicKey())
		expectMatch(srv.Addr, r.CCFingerprint)
		expectMatch(srv.Addr, ssh.FingerprintSHA256(nextKey))
		code, out := verify(srv.Addr, current.Value.PublicKeyFingerprint)
		Expect(code).To(Equal(1), out)
		client.knownAt(srv.Addr, client.known())
		client.login(srv.Addr, "true")
		Expect(keyBlobs(client.known()...)).To(ConsistOf(keyBlobs(curKey, nextKey)))
		srv.Close()

		By("stage 3: old key dropped; OpenSSH forgets it")
		r = render(varsFile, "operations/rotate-host-key/stage3.yml")
		Expect(r.HostKey).To(Equal(next.Value.PrivateKey))
		Expect(r.NextHostKeys).To(BeEmpty())
		Expect(r.CCFingerprint).To(Equal(next.Value.PublicKeyFingerprint))
		srv = r.serve(client.key.PublicKey())
		expectMatch(srv.Addr, r.CCFingerprint)
		client.knownAt(srv.Addr, client.known())
		client.login(srv.Addr, "true")
		Expect(keyBlobs(client.known()...)).To(Equal(keyBlobs(nextKey)))
	})
})
