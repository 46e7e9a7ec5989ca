package scp_test

import (
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// These specs drive the real OpenSSH client ("scp -O", the legacy protocol)
// against Run: "-S" makes scp start the scpserve helper instead of ssh, and
// the helper serves the remote command on the pipe pair scp gave it.
var _ = Describe("interoperability with OpenSSH scp -O", func() {
	const scpClient = "/usr/bin/scp"
	var local, work, logFile string

	BeforeEach(func() {
		_, err := os.Stat(scpClient)
		Expect(err).NotTo(HaveOccurred(), "the OpenSSH client (package openssh-client) is required")
		outer := tempDir()
		local = filepath.Join(outer, "local")
		work = filepath.Join(outer, "work")
		logFile = filepath.Join(outer, "commands.log")
		Expect(os.Mkdir(local, 0o755)).To(Succeed())
		Expect(os.Mkdir(work, 0o755)).To(Succeed())
	})

	scp := func(args ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, scpClient, append([]string{"-O", "-q", "-S", serveBin}, args...)...)
		cmd.Dir = local
		cmd.Env = append(os.Environ(), "SCPSERVE_WORKDIR="+work, "SCPSERVE_LOG="+logFile)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), string(out)
			}
			Fail("running scp: " + err.Error())
		}
		return 0, string(out)
	}

	served := func() string {
		b, err := os.ReadFile(logFile)
		Expect(err).NotTo(HaveOccurred())
		return string(b)
	}

	It("uploads and downloads a file byte for byte", func() {
		data := make([]byte, 5<<20+321)
		rand.New(rand.NewSource(11)).Read(data)
		Expect(os.WriteFile(filepath.Join(local, "blob"), data, 0o644)).To(Succeed())
		code, out := scp("blob", "host:up.bin")
		Expect(code).To(Equal(0), out)
		Expect(os.ReadFile(filepath.Join(work, "up.bin"))).To(Equal(data))
		code, out = scp("host:up.bin", "down.bin")
		Expect(code).To(Equal(0), out)
		Expect(os.ReadFile(filepath.Join(local, "down.bin"))).To(Equal(data))
		Expect(served()).To(Equal("scp -t up.bin\nscp -f up.bin\n"))
	})

	It("copies a tree both ways with -r -p, keeping modes and times", func() {
		makeTree(filepath.Join(local, "tree"))
		code, out := scp("-r", "-p", "tree", "host:")
		Expect(code).To(Equal(0), out)
		Expect(snapshot(filepath.Join(work, "tree"), true)).To(Equal(snapshot(filepath.Join(local, "tree"), true)))

		code, out = scp("-r", "-p", "host:tree", "back")
		Expect(code).To(Equal(0), out)
		Expect(snapshot(filepath.Join(local, "back"), true)).To(Equal(snapshot(filepath.Join(local, "tree"), true)))
		for _, top := range []string{filepath.Join(work, "tree"), filepath.Join(local, "back")} {
			st, err := os.Stat(top)
			Expect(err).NotTo(HaveOccurred())
			src, err := os.Stat(filepath.Join(local, "tree"))
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Mode()).To(Equal(src.Mode()))
			Expect(st.ModTime().Unix()).To(Equal(src.ModTime().Unix()))
		}
		Expect(served()).To(Equal("scp -r -p -t .\nscp -r -p -f tree\n"))
	})

	It("shows a missing remote file as OpenSSH does and exits 1", func() {
		code, out := scp("host:nothing", ".")
		Expect(code).To(Equal(1))
		Expect(out).To(ContainSubstring("scp: nothing: No such file or directory"))
	})

	It("refuses several files sent to a remote path that is not a directory (-d)", func() {
		Expect(os.WriteFile(filepath.Join(local, "a"), []byte("a"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(local, "b"), []byte("b"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(work, "plain"), []byte("p"), 0o644)).To(Succeed())
		code, out := scp("a", "b", "host:plain")
		Expect(code).To(Equal(1))
		Expect(out).To(ContainSubstring("plain: Not a directory"))
		Expect(served()).To(Equal("scp -d -t plain\n"))
		Expect(os.ReadFile(filepath.Join(work, "plain"))).To(Equal([]byte("p")))

		Expect(os.Mkdir(filepath.Join(work, "dir"), 0o755)).To(Succeed())
		code, out = scp("a", "b", "host:dir")
		Expect(code).To(Equal(0), out)
		Expect(listAll(filepath.Join(work, "dir"))).To(Equal([]string{".", "a", "b"}))
	})

	It("handles remote names quoted for the shell", func() {
		Expect(os.WriteFile(filepath.Join(local, "x"), []byte("spaced out"), 0o644)).To(Succeed())
		code, out := scp("x", "host:'my file.txt'")
		Expect(code).To(Equal(0), out)
		Expect(os.ReadFile(filepath.Join(work, "my file.txt"))).To(Equal([]byte("spaced out")))
		code, out = scp(`host:my\ file.txt`, "y")
		Expect(code).To(Equal(0), out)
		Expect(os.ReadFile(filepath.Join(local, "y"))).To(Equal([]byte("spaced out")))
	})
})
