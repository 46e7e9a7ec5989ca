// Package hardening_test drives the ssh-proxy binary's pre-authentication defences, PROXY
// protocol, drain, metrics, audit log and failure handling end to end: real OpenSSH clients
// (under sshpass) and Go clients through ssh-proxy into our sshd, with the UAA, Cloud
// Controller and BBS stand-ins, all on 127.0.0.0/8. Distinct client sources are distinct
// loopback addresses (127.0.0.2, 127.0.0.3, ...).
package hardening_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestHardening(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ssh-proxy Hardening Suite")
}

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	for _, tool := range []string{"ssh", "sshpass"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the hardening suite needs %s", tool)
	}
	dir, err := os.MkdirTemp("", "ssh-proxy-hardening-bin")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	build := func(pkg, out string) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = filepath.Join(must(os.Getwd()), "..", "..")
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Run()).To(Succeed(), "go build %s", pkg)
	}
	proxy, sshd := os.Getenv("SSH_PROXY_BINARY"), os.Getenv("SSHD_BINARY")
	if proxy == "" {
		proxy = filepath.Join(dir, "ssh-proxy")
		build("./cmd/ssh-proxy", proxy)
	}
	if sshd == "" {
		sshd = filepath.Join(dir, "sshd")
		build("./cmd/sshd", sshd)
	}
	return []byte(proxy + "\n" + sshd)
}, func(b []byte) {
	parts := strings.SplitN(string(b), "\n", 2)
	proxyBin, sshdBin = parts[0], parts[1]
	// 1,000 stalled connections plus everything else: raise the soft fd limit (inherited by
	// the proxy this process starts).
	var rl syscall.Rlimit
	Expect(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)).To(Succeed())
	if rl.Cur < 8192 && rl.Max > rl.Cur {
		rl.Cur = min(rl.Max, 8192)
		Expect(syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)).To(Succeed())
	}
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}

// secrets collects every credential the suite hands out and every log and audit file the
// proxies write, for the final grep (see secrets_test.go).
var secrets struct {
	sync.Mutex
	values []string
	logs   []string
}

func rememberSecret(v string) string {
	secrets.Lock()
	secrets.values = append(secrets.values, v)
	secrets.Unlock()
	return v
}
