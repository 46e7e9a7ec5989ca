// Package proxy_test drives the ssh-proxy binary end to end (built from ./cmd/ssh-proxy and
// ./cmd/sshd, or the binaries named by SSH_PROXY_BINARY and SSHD_BINARY): real OpenSSH clients (ssh, scp,
// sftp via sshpass) through ssh-proxy into our sshd binary, with stand-ins for UAA, the Cloud
// Controller and the BBS that speak their real wire formats over TLS.
package proxy_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

func TestProxyIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ssh-proxy Integration Suite")
}

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	return proxyrig.BuildBinaries("integration", "ssh", "scp", "sftp", "sshpass")
}, func(b []byte) {
	proxyBin, sshdBin = proxyrig.Binaries(b)
})
