package sshd_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"
)

func TestSSHD(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "sshd conformance suite")
}

// keyPair is an ed25519 key written in OpenSSH formats.
type keyPair struct {
	PrivatePEM    string     // OpenSSH private key PEM
	PrivateFile   string     // path, mode 0600
	AuthorizedKey string     // authorized_keys line
	Signer        ssh.Signer // for Go clients
}

var (
	sshdPath  string
	clientKey keyPair
	otherKey  keyPair
	hostKey   keyPair
)

func newKeyPair(dir, name string) keyPair {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, name)
	Expect(err).NotTo(HaveOccurred())
	pemText := string(pem.EncodeToMemory(block))
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, []byte(pemText), 0o600)).To(Succeed())
	signer, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	return keyPair{
		PrivatePEM:    pemText,
		PrivateFile:   path,
		AuthorizedKey: string(ssh.MarshalAuthorizedKey(signer.PublicKey())),
		Signer:        signer,
	}
}

var _ = SynchronizedBeforeSuite(func() []byte {
	if p := os.Getenv("SSHD_BINARY"); p != "" {
		abs, err := filepath.Abs(p)
		Expect(err).NotTo(HaveOccurred())
		return []byte(abs)
	}
	p, err := gexec.Build("github.com/app-ssh/app-ssh/cmd/sshd")
	Expect(err).NotTo(HaveOccurred())
	return []byte(p)
}, func(path []byte) {
	sshdPath = string(path)
	for _, tool := range []string{"ssh", "scp", "sftp"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the OpenSSH client tool %s is required", tool)
	}
	dir, err := os.MkdirTemp("", "sshd-suite-keys")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	clientKey = newKeyPair(dir, "client")
	otherKey = newKeyPair(dir, "other")
	hostKey = newKeyPair(dir, "host")
})

var _ = SynchronizedAfterSuite(func() {}, func() {
	gexec.CleanupBuildArtifacts()
})
