// Package websocket_test drives SSH over WebSocket end to end with the real tools: OpenSSH's
// ssh, scp and sftp through app-ssh-ws as ProxyCommand, to the wslisten listener, bridged to
// OpenSSH's sshd; directly and through nginx terminating TLS and re-encrypting to the listener
// the way gorouter does for a TLS route.
package websocket_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

func TestWebSocket(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "SSH over WebSocket suite")
}

var clientPath, proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	p, err := gexec.Build("github.com/app-ssh/app-ssh/cmd/app-ssh-ws")
	Expect(err).NotTo(HaveOccurred())
	return append([]byte(p+"\n"), proxyrig.BuildBinaries("websocket", "sshpass", "nginx")...)
}, func(b []byte) {
	p, rest, _ := strings.Cut(string(b), "\n")
	clientPath = p
	proxyBin, sshdBin = proxyrig.Binaries([]byte(rest))
	for _, tool := range []string{"ssh", "scp", "sftp", "ssh-keygen"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the OpenSSH client tool %s is required", tool)
	}
	Expect(sshdPath()).To(BeAnExistingFile(), "OpenSSH's sshd is required (Debian: openssh-server)")
	Expect(os.MkdirAll("/run/sshd", 0o755)).To(Succeed()) // sshd's privilege-separation directory
})

var _ = SynchronizedAfterSuite(func() {}, func() {
	gexec.CleanupBuildArtifacts()
})
