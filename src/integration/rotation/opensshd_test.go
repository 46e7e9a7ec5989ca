package rotation_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
)

// sshKeygen makes a host key with OpenSSH's own tool and returns its public key.
func sshKeygen(dir, name, keyType string) ssh.PublicKey {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(dir, name)
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", keyType, "-N", "", "-C", "", "-f", path).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	pubText, err := os.ReadFile(path + ".pub")
	Expect(err).NotTo(HaveOccurred())
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubText)
	Expect(err).NotTo(HaveOccurred())
	return pub
}

var _ = Describe("scripts/verify-host-key against OpenSSH's sshd", func() {
	It("matches either of sshd's RSA and ed25519 keys in both fingerprint forms", func() {
		sshd, err := exec.LookPath("sshd")
		if err != nil {
			sshd = "/usr/sbin/sshd"
		}
		Expect(sshd).To(BeAnExistingFile(), "OpenSSH's sshd is needed")
		Expect(os.MkdirAll("/run/sshd", 0o755)).To(Succeed()) // sshd's privilege-separation directory

		dir := GinkgoT().TempDir()
		rsaPub := sshKeygen(dir, "rsa", "rsa")
		edPub := sshKeygen(dir, "ed25519", "ed25519")
		otherPub := sshKeygen(dir, "other", "ed25519")
		port := strconv.Itoa(procs.FreePort())
		cmd := exec.Command(sshd, "-D", "-e", "-f", "/dev/null",
			"-o", "ListenAddress=127.0.0.1:"+port,
			"-o", "HostKey="+filepath.Join(dir, "rsa"),
			"-o", "HostKey="+filepath.Join(dir, "ed25519"),
			"-o", "PidFile=none", "-o", "UsePAM=no", "-o", "PasswordAuthentication=no")
		addr := "127.0.0.1:" + port
		procs.Start("OpenSSH's sshd", cmd).WaitListening(addr)

		for _, pub := range []ssh.PublicKey{rsaPub, edPub} {
			expectMatch(addr, ssh.FingerprintLegacyMD5(pub))
			expectMatch(addr, strings.TrimPrefix(ssh.FingerprintSHA256(pub), "SHA256:")+"=")
		}
		code, msg := verify(addr, ssh.FingerprintSHA256(otherPub))
		Expect(code).To(Equal(1), msg)
		Expect(msg).To(ContainSubstring(ssh.FingerprintSHA256(rsaPub)))
		Expect(msg).To(ContainSubstring(ssh.FingerprintSHA256(edPub)))
	})
})
