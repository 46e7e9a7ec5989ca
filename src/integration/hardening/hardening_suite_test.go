// Package hardening_test drives the ssh-proxy binary's pre-authentication defences, PROXY
// protocol, drain, metrics, audit log and failure handling end to end: real OpenSSH clients
// (under sshpass) and Go clients through ssh-proxy into our sshd, with the UAA, Cloud
// Controller and BBS stand-ins, all on 127.0.0.0/8. Distinct client sources are distinct
// loopback addresses (127.0.0.2, 127.0.0.3, ...).
package hardening_test

import (
	"sync"
	"syscall"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

func TestHardening(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ssh-proxy Hardening Suite")
}

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	return proxyrig.BuildBinaries("hardening", "ssh", "sshpass")
}, func(b []byte) {
	proxyBin, sshdBin = proxyrig.Binaries(b)
	// 1,000 stalled connections plus everything else: raise the soft fd limit (inherited by
	// the proxy this process starts).
	var rl syscall.Rlimit
	Expect(syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)).To(Succeed())
	if rl.Cur < 8192 && rl.Max > rl.Cur {
		rl.Cur = min(rl.Max, 8192)
		Expect(syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)).To(Succeed())
	}
})

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
