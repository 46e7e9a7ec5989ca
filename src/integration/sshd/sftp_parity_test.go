package sshd_test

import (
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// mode is the permission part (with set-id and sticky bits) of path's mode.
func mode(path string) os.FileMode {
	GinkgoHelper()
	fi, err := os.Lstat(path)
	Expect(err).NotTo(HaveOccurred())
	return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

func readlink(path string) string {
	GinkgoHelper()
	t, err := os.Readlink(path)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// sftpMkdir sends one SSH_FXP_MKDIR with permissions perm over a fresh "sftp" subsystem of c
// (pkg/sftp's and OpenSSH's clients offer no mkdir with a mode; paramiko, lftp and WinSCP send
// one) and returns the status code of the reply.
func sftpMkdir(c *ssh.Client, dir string, perm uint32) uint32 {
	GinkgoHelper()
	s, err := c.NewSession()
	Expect(err).NotTo(HaveOccurred())
	defer s.Close()
	in, err := s.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	out, err := s.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(s.RequestSubsystem("sftp")).To(Succeed())
	send := func(typ byte, body []byte) {
		pkt := binary.BigEndian.AppendUint32(nil, uint32(len(body)+1))
		_, err := in.Write(append(append(pkt, typ), body...))
		Expect(err).NotTo(HaveOccurred())
	}
	recv := func() (byte, []byte) {
		var hdr [5]byte
		_, err := io.ReadFull(out, hdr[:])
		Expect(err).NotTo(HaveOccurred())
		body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
		_, err = io.ReadFull(out, body)
		Expect(err).NotTo(HaveOccurred())
		return hdr[4], body
	}
	send(1, binary.BigEndian.AppendUint32(nil, 3)) // SSH_FXP_INIT, version 3
	typ, _ := recv()
	Expect(typ).To(Equal(byte(2)))                // SSH_FXP_VERSION
	body := binary.BigEndian.AppendUint32(nil, 1) // request id
	body = binary.BigEndian.AppendUint32(body, uint32(len(dir)))
	body = append(body, dir...)
	body = binary.BigEndian.AppendUint32(body, 0x4) // SSH_FILEXFER_ATTR_PERMISSIONS
	body = binary.BigEndian.AppendUint32(body, perm)
	send(14, body) // SSH_FXP_MKDIR
	typ, body = recv()
	Expect(typ).To(Equal(byte(101))) // SSH_FXP_STATUS
	return binary.BigEndian.Uint32(body[4:8])
}

var _ = Describe("SFTP file attributes and symlinks (as OpenSSH's sftp-server)", func() {
	var local string

	// start runs a daemon under the usual umask (022): the modes below are what OpenSSH's
	// sftp-server gives under it.
	under022 := func(start func() *daemon) *daemon {
		old := syscall.Umask(0o022)
		defer syscall.Umask(old)
		return start()
	}

	BeforeEach(func() {
		local = GinkgoT().TempDir()
	})

	DescribeTable("keeps symlink targets as written, honours mkdir and create modes, chmod and times, and lists . and .. with OpenSSH's sftp, like OpenSSH's sftp-server", func(start func() *daemon) {
		d := under022(start)
		tree := filepath.Join(local, "tree")
		Expect(os.Mkdir(tree, 0o700)).To(Succeed())
		Expect(os.Chmod(tree, 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(tree, "secret"), []byte("s\n"), 0o600)).To(Succeed())
		Expect(os.Chmod(filepath.Join(tree, "secret"), 0o600)).To(Succeed())
		stamped := filepath.Join(local, "stamped.txt")
		Expect(os.WriteFile(stamped, []byte("t\n"), 0o644)).To(Succeed())
		mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		Expect(os.Chtimes(stamped, mtime, mtime)).To(Succeed())

		batch := filepath.Join(local, "batch")
		Expect(os.WriteFile(batch, []byte(strings.Join([]string{
			"put -r " + tree + " tree",           // mkdir with the local directory's mode, 0700
			"symlink s2.txt s2.link",             // relative, same directory
			"symlink ../x/y up.link",             // relative, upwards
			"symlink /etc/hostname abs.link",     // absolute
			"put -p " + stamped + " stamped.txt", // fsetstat: times
			"chmod 640 stamped.txt",              // setstat: permissions
			"ls -la",
		}, "\n")+"\n"), 0o644)).To(Succeed())
		args := append(commonOpts(clientKey.PrivateFile), "-P", d.port, "-b", batch, d.login()+"@127.0.0.1")
		sess := run(exec.Command("sftp", args...))
		Expect(sess.ExitCode()).To(Equal(0), string(sess.Err.Contents()))

		Expect(readlink(filepath.Join(d.home, "s2.link"))).To(Equal("s2.txt"))
		Expect(readlink(filepath.Join(d.home, "up.link"))).To(Equal("../x/y"))
		Expect(readlink(filepath.Join(d.home, "abs.link"))).To(Equal("/etc/hostname"))
		Expect(mode(filepath.Join(d.home, "tree"))).To(Equal(os.FileMode(0o700)), "mkdir 0700 under umask 022")
		Expect(mode(filepath.Join(d.home, "tree", "secret"))).To(Equal(os.FileMode(0o600)), "created 0600")
		Expect(mode(filepath.Join(d.home, "stamped.txt"))).To(Equal(os.FileMode(0o640)))
		fi, err := os.Stat(filepath.Join(d.home, "stamped.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.ModTime().UTC()).To(Equal(mtime))

		out := string(sess.Out.Contents())
		Expect(out).To(MatchRegexp(`(?m)^d\S+ .* \.$`), "ls -la lists .")
		Expect(out).To(MatchRegexp(`(?m)^d\S+ .* \.\.$`), "ls -la lists ..")
	}, oursEntry(), stockEntry())

	DescribeTable("creates a directory with the mode SSH_FXP_MKDIR asks for, under the umask, like OpenSSH's sftp-server", func(start func() *daemon) {
		d := under022(start)
		c := d.mustGoClient()
		Expect(sftpMkdir(c, "d700", 0o700)).To(BeZero())
		Expect(mode(filepath.Join(d.home, "d700"))).To(Equal(os.FileMode(0o700)))
		Expect(sftpMkdir(c, filepath.Join(d.home, "d777"), 0o777)).To(BeZero())
		Expect(mode(filepath.Join(d.home, "d777"))).To(Equal(os.FileMode(0o755)), "0777 less the 022 umask")
	}, oursEntry(), stockEntry())

	DescribeTable("round-trips symlinks, modes and times through pkg/sftp's client, like OpenSSH's sftp-server", func(start func() *daemon) {
		d := under022(start)
		sc, err := sftp.NewClient(d.mustGoClient())
		Expect(err).NotTo(HaveOccurred())
		defer sc.Close()

		for link, target := range map[string]string{"s2.link": "s2.txt", "up.link": "../x/y", "abs.link": "/etc/hostname"} {
			Expect(sc.Symlink(target, link)).To(Succeed())
			Expect(sc.ReadLink(link)).To(Equal(target), link)
			Expect(readlink(filepath.Join(d.home, link))).To(Equal(target), link)
		}

		Expect(sc.Mkdir("dir")).To(Succeed()) // no mode sent: 0777 before the umask
		Expect(mode(filepath.Join(d.home, "dir"))).To(Equal(os.FileMode(0o755)))

		f, err := sc.OpenFile("f", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
		_, err = sc.OpenFile("f", os.O_WRONLY|os.O_CREATE|os.O_EXCL)
		Expect(err).To(HaveOccurred(), "O_EXCL on an existing file")

		Expect(sc.Chmod("f", 0o640|os.ModeSetgid)).To(Succeed())
		Expect(mode(filepath.Join(d.home, "f"))).To(Equal(0o640 | os.ModeSetgid))
		fi, err := sc.Stat("f")
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o640)))

		at, mt := time.Unix(1_000_000_000, 0), time.Unix(1_100_000_000, 0)
		Expect(sc.Chtimes("f", at, mt)).To(Succeed())
		fi, err = sc.Stat("f")
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.ModTime().Unix()).To(Equal(mt.Unix()))

		By("remove and rmdir each refusing the other's kind, as unlink(2) and rmdir(2)")
		Expect(sc.RemoveDirectory("f")).NotTo(Succeed())
		Expect(sc.Remove("dir")).To(Succeed()) // pkg/sftp's client falls back to rmdir
		Expect(filepath.Join(d.home, "dir")).NotTo(BeAnExistingFile())
	}, oursEntry(), stockEntry())
})
