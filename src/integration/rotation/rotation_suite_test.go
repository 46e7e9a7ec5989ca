package rotation_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestRotation(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "host-key rotation")
}

var (
	repoRoot         string
	configServerPath string
	verifyHostKey    string
	// proxyBinary and sshdBinary are ./cmd/ssh-proxy and ./cmd/sshd built for this run (or
	// SSH_PROXY_BINARY / SSHD_BINARY when set): the real processes the stage specs deploy.
	proxyBinary string
	sshdBinary  string
)

// repository root: this file is src/integration/rotation/rotation_suite_test.go
func findRepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	Expect(ok).To(BeTrue())
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// runScript runs a bash snippet from the repository root with a deadline and returns its output.
func runScript(timeout time.Duration, script string) string {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = repoRoot
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return string(out)
}

var _ = BeforeSuite(func() {
	repoRoot = findRepoRoot()
	verifyHostKey = filepath.Join(repoRoot, "scripts", "verify-host-key")
	for _, tool := range []string{"ssh-keyscan", "ssh-keygen"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "OpenSSH's %s is needed", tool)
	}
	By("building the pinned config-server with scripts/lib/config-server.sh")
	runScript(8*time.Minute, `source scripts/lib/common.sh && source scripts/lib/config-server.sh && ensure_config_server`)
	By("building the pinned bosh CLI (scripts/lib/common.sh ensure_bosh)")
	runScript(8*time.Minute, `source scripts/lib/common.sh && ensure_bosh`)
	configServerPath = filepath.Join(repoRoot, "bin", "config-server")

	proxyBinary, sshdBinary = os.Getenv("SSH_PROXY_BINARY"), os.Getenv("SSHD_BINARY")
	if proxyBinary == "" || sshdBinary == "" {
		binDir, err := os.MkdirTemp("", "rotation-bin-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, binDir)
		By("building ./cmd/ssh-proxy and ./cmd/sshd")
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", binDir+string(os.PathSeparator), "./cmd/ssh-proxy", "./cmd/sshd")
		build.Dir = filepath.Join(repoRoot, "src")
		build.WaitDelay = 5 * time.Second
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		if proxyBinary == "" {
			proxyBinary = filepath.Join(binDir, "ssh-proxy")
		}
		if sshdBinary == "" {
			sshdBinary = filepath.Join(binDir, "sshd")
		}
	}
	for _, tool := range []string{"ruby", "ssh"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "%s is needed to render jobs and log in", tool)
	}
})
