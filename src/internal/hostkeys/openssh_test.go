package hostkeys_test

import (
	"bytes"
	"context"
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

// opensshClient drives the real OpenSSH client against a test server.
type opensshClient struct {
	dir, identity, knownHosts string
	key                       ssh.Signer
}

func newOpensshClient() *opensshClient {
	_, err := exec.LookPath("ssh")
	Expect(err).NotTo(HaveOccurred(), "the OpenSSH client (ssh) must be installed")
	dir := GinkgoT().TempDir()
	c := &opensshClient{dir: dir, identity: filepath.Join(dir, "id"), knownHosts: filepath.Join(dir, "known_hosts")}
	c.key = newEd25519()
	block, err := ssh.MarshalPrivateKey(mustPrivate(c.key), "")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(c.identity, pemEncode(block), 0o600)).To(Succeed())
	return c
}

// trust writes a known_hosts file holding exactly keys for srv.
func (c *opensshClient) trust(srv *testServer, keys ...ssh.PublicKey) {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, k) + "\n")
	}
	Expect(os.WriteFile(c.knownHosts, []byte(b.String()), 0o600)).To(Succeed())
}

// known returns the key blobs recorded in known_hosts.
func (c *opensshClient) known() []string {
	data, err := os.ReadFile(c.knownHosts)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	rest := data
	for i := 0; i < 100 && len(bytes.TrimSpace(rest)) > 0; i++ {
		_, _, key, _, next, err := ssh.ParseKnownHosts(rest)
		Expect(err).NotTo(HaveOccurred())
		out = append(out, string(key.Marshal()))
		rest = next
	}
	return out
}

// login runs `ssh ... true` against srv and returns its exit error and stderr.
func (c *opensshClient) login(srv *testServer, updateHostKeys, command string, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{
		"-F", "/dev/null",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UpdateHostKeys=" + updateHostKeys,
		"-o", "UserKnownHostsFile=" + c.knownHosts,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "HashKnownHosts=no",
		"-o", "CheckHostIP=no",
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "ConnectTimeout=10",
		"-i", c.identity,
		"-p", srv.Port(),
		"-v",
	}
	args = append(args, extra...)
	args = append(args, "cf@127.0.0.1", command)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdin = nil
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return stderr.String(), err
}

var _ = Describe("with the real OpenSSH client", func() {
	DescribeTable("UpdateHostKeys learns the next key before it is presented, then accepts it without a prompt",
		func(mkCurrent, mkNext func() ssh.Signer, clientOpts ...string) {
			client := newOpensshClient()
			current, next := mkCurrent(), mkNext()

			By("stage 1: the server presents the current key and announces the next one")
			stage1 := startServer([]ssh.Signer{current}, hostkeys.New([]ssh.Signer{current}, []ssh.Signer{next}), client.key.PublicKey())
			client.trust(stage1, current.PublicKey())
			stderr, err := client.login(stage1, "yes", "wait-for-proof", clientOpts...)
			Expect(err).NotTo(HaveOccurred(), stderr)
			stage1.Close()
			Expect(stage1.Sent.Load()).To(BeEquivalentTo(1))
			Expect(stage1.Proves.Load()).To(BeEquivalentTo(1), "the client asked for proof of the new key")
			Expect(client.known()).To(ConsistOf(string(current.PublicKey().Marshal()), string(next.PublicKey().Marshal())),
				stderr)

			By("stage 2: the server presents the next key (old one still announced); strict checking passes")
			stage2 := startServer([]ssh.Signer{next}, hostkeys.New([]ssh.Signer{next}, []ssh.Signer{current}), client.key.PublicKey())
			DeferCleanup(stage2.Close)
			// the port changed, so carry the learned keys over to the new address
			client.trust(stage2, current.PublicKey(), next.PublicKey())
			stderr, err = client.login(stage2, "yes", "true", clientOpts...)
			Expect(err).NotTo(HaveOccurred(), stderr)
			Expect(stderr).NotTo(ContainSubstring("REMOTE HOST IDENTIFICATION HAS CHANGED"))

			By("stage 3: the old key is no longer announced; the client forgets it")
			stage3 := startServer([]ssh.Signer{next}, hostkeys.New([]ssh.Signer{next}, nil), client.key.PublicKey())
			DeferCleanup(stage3.Close)
			client.trust(stage3, current.PublicKey(), next.PublicKey())
			stderr, err = client.login(stage3, "yes", "true", clientOpts...)
			Expect(err).NotTo(HaveOccurred(), stderr)
			Expect(client.known()).To(ConsistOf(string(next.PublicKey().Marshal())))
		},
		Entry("ed25519 to ed25519", newEd25519, newEd25519),
		Entry("ed25519 to RSA", newEd25519, newRSA),
		Entry("RSA (rsa-sha2-512) to RSA", newRSA, newRSA),
		Entry("RSA (rsa-sha2-256) to RSA", newRSA, newRSA, "-o", "HostKeyAlgorithms=rsa-sha2-256"),
		Entry("RSA to ed25519", newRSA, newEd25519),
	)

	It("without UpdateHostKeys the client learns nothing and refuses the next key", func() {
		client := newOpensshClient()
		current, next := newEd25519(), newEd25519()
		stage1 := startServer([]ssh.Signer{current}, hostkeys.New([]ssh.Signer{current}, []ssh.Signer{next}), client.key.PublicKey())
		client.trust(stage1, current.PublicKey())
		stderr, err := client.login(stage1, "no", "true")
		stage1.Close()
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(client.known()).To(Equal([]string{string(current.PublicKey().Marshal())}))

		stage2 := startServer([]ssh.Signer{next}, hostkeys.New([]ssh.Signer{next}, nil), client.key.PublicKey())
		DeferCleanup(stage2.Close)
		client.trust(stage2, current.PublicKey())
		stderr, err = client.login(stage2, "no", "true")
		Expect(err).To(HaveOccurred())
		Expect(stderr).To(ContainSubstring("Host key verification failed"))
	})

	It("a server that proves with the wrong RSA algorithm teaches the client nothing", func() {
		// Negotiating rsa-sha2-256 while an announcer that does not know the negotiated
		// algorithm would sign with rsa-sha2-512: the client must reject that proof. The
		// helper below forwards requests to an Announcer, but hides the connection's algorithms.
		client := newOpensshClient()
		current, next := newRSA(), newRSA()
		ann := hostkeys.New([]ssh.Signer{current}, []ssh.Signer{next})
		srv := startServerOpts([]ssh.Signer{current}, ann, client.key.PublicKey(), true)
		DeferCleanup(srv.Close)
		client.trust(srv, current.PublicKey())
		stderr, err := client.login(srv, "yes", "wait-for-proof", "-o", "HostKeyAlgorithms=rsa-sha2-256")
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(srv.Proves.Load()).To(BeEquivalentTo(1))
		Expect(client.known()).To(Equal([]string{string(current.PublicKey().Marshal())}))
	})
})
