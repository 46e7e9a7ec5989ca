package scp_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestSCP(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "scp Suite")
}

// serveBin is the testdata/scpserve helper, built once for the suite.
var serveBin string

var _ = BeforeSuite(func() {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir, err := os.MkdirTemp("", "scpserve-bin-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	// Reachable by the unprivileged user some specs run the helper as.
	Expect(os.Chmod(dir, 0o755)).To(Succeed())
	serveBin = filepath.Join(dir, "scpserve")
	build := exec.Command(goTool, "build", "-o", serveBin, "./testdata/scpserve")
	build.Stdout = GinkgoWriter
	build.Stderr = GinkgoWriter
	Expect(build.Run()).To(Succeed(), "building testdata/scpserve")
})
