// Package algorithms_test checks what the ssh-proxy and sshd binaries negotiate when operators
// leave the algorithm lists unset (ssh-audit, Debian's package, audits both listeners) and what
// they tolerate when the lists name algorithms golang.org/x/crypto does not implement: they
// start, warn once and serve real OpenSSH logins.
package algorithms_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

func TestAlgorithms(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Algorithms Suite")
}

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	return proxyrig.BuildBinaries("algorithms", "ssh", "sshpass", "ssh-audit")
}, func(b []byte) {
	proxyBin, sshdBin = proxyrig.Binaries(b)
})
