package rotation_test

import (
	"context"
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
})
