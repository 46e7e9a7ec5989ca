package sshd_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// startStock runs OpenSSH's own sshd, the reference the parity specs hold ours to, on an
// ephemeral loopback port with the suite's host key, letting clientKey in as the current user
// (OpenSSH's sshd needs root for privilege separation; scripts/test installs openssh-server).
// Its sftp-server starts in a fresh directory, the daemon's home. extra are more -o options.
func startStock(extra ...string) *daemon {
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	Expect(bin).To(BeAnExistingFile(), "OpenSSH's sshd is the reference; install openssh-server")
	Expect(os.Geteuid()).To(BeZero(), "OpenSSH's sshd (the reference) runs as root")
	Expect(os.MkdirAll("/run/sshd", 0o755)).To(Succeed()) // its privilege-separation directory
	me, err := user.Current()
	Expect(err).NotTo(HaveOccurred())

	dir, home := GinkgoT().TempDir(), GinkgoT().TempDir()
	keys := filepath.Join(dir, "authorized_keys")
	Expect(os.WriteFile(keys, []byte(clientKey.AuthorizedKey), 0o600)).To(Succeed())
	port := itoa(freePort())
	args := []string{"-D", "-e", "-f", "/dev/null",
		"-o", "ListenAddress=127.0.0.1:" + port, "-o", "HostKey=" + hostKey.PrivateFile,
		"-o", "AuthorizedKeysFile=" + keys, "-o", "StrictModes=no", "-o", "PermitRootLogin=prohibit-password",
		"-o", "UsePAM=no", "-o", "PidFile=none", "-o", "PasswordAuthentication=no",
		"-o", "KbdInteractiveAuthentication=no", "-o", "Subsystem=sftp internal-sftp -d " + home}
	for _, o := range extra {
		args = append(args, "-o", o)
	}
	sess, err := gexec.Start(exec.Command(bin, args...), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { sess.Kill().Wait(startTimeout) })
	Eventually(func() error {
		if sess.ExitCode() != -1 {
			return StopTrying("OpenSSH's sshd exited: " + string(sess.Err.Contents()))
		}
		c, err := netDial(port)
		if err == nil {
			c.Close()
		}
		return err
	}, startTimeout, 50*time.Millisecond).Should(Succeed())
	return &daemon{session: sess, port: port, home: home, user: me.Username}
}

// ours starts our sshd as the parity specs compare it.
func ours() *daemon { return startKeyed(nil) }

// oursEntry and stockEntry are the two rows of every parity table: the same spec against our
// sshd and against OpenSSH's. args follow the daemon's start function; the first, if any,
// names the row.
func oursEntry(args ...any) TableEntry {
	return Entry(rowName("app-ssh's sshd", args), append([]any{ours}, args...)...)
}

func stockEntry(args ...any) TableEntry {
	start := func() *daemon { return startStock() }
	return Entry(rowName("OpenSSH's sshd (the reference)", args), append([]any{start}, args...)...)
}

func rowName(who string, args []any) string {
	if len(args) > 0 {
		return fmt.Sprintf("%s, %q", who, args[0])
	}
	return who
}
