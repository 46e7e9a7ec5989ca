// Package proxy_test drives the ssh-proxy binary end to end (built from ./cmd/ssh-proxy and
// ./cmd/sshd, or the binaries named by SSH_PROXY_BINARY and SSHD_BINARY): real OpenSSH clients (ssh, scp,
// sftp via sshpass) through ssh-proxy into our sshd binary, with stand-ins for UAA, the Cloud
// Controller and the BBS that speak their real wire formats over TLS.
package proxy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestProxyIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ssh-proxy Integration Suite")
}

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	for _, tool := range []string{"ssh", "scp", "sftp", "sshpass"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the integration suite needs %s", tool)
	}
	dir, err := os.MkdirTemp("", "ssh-proxy-integration-bin")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir) // runs after the whole suite, on this process
	build := func(pkg, out string) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = moduleRoot()
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Run()).To(Succeed(), "go build %s", pkg)
	}
	if env := os.Getenv("SSH_PROXY_BINARY"); env != "" {
		Expect(env).To(BeAnExistingFile())
	} else {
		build("./cmd/ssh-proxy", filepath.Join(dir, "ssh-proxy"))
	}
	if env := os.Getenv("SSHD_BINARY"); env != "" {
		Expect(env).To(BeAnExistingFile())
	} else {
		build("./cmd/sshd", filepath.Join(dir, "sshd"))
	}
	return []byte(dir)
}, func(dir []byte) {
	proxyBin = os.Getenv("SSH_PROXY_BINARY")
	if proxyBin == "" {
		proxyBin = filepath.Join(string(dir), "ssh-proxy")
	}
	sshdBin = os.Getenv("SSHD_BINARY")
	if sshdBin == "" {
		sshdBin = filepath.Join(string(dir), "sshd")
	}
})

// moduleRoot is src/ (this package lives in src/integration/proxy).
func moduleRoot() string {
	wd, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	return filepath.Join(wd, "..", "..")
}
