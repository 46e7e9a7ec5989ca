package sshd_test

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// tree describes files of a test tree: relative path → mode (directories end in "/").
var treeLayout = []struct {
	path string
	mode fs.FileMode
}{
	{"top/", 0o750},
	{"top/a.txt", 0o640},
	{"top/run.sh", 0o755},
	{"top/sub/", 0o700},
	{"top/sub/deep.bin", 0o600},
	{"top/sub/empty", 0o644},
}

var treeTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func makeTree(root string) {
	for _, e := range treeLayout {
		p := filepath.Join(root, e.path)
		if strings.HasSuffix(e.path, "/") {
			Expect(os.MkdirAll(p, 0o755)).To(Succeed())
			continue
		}
		size := 4096 + len(e.path)*1000
		if strings.HasSuffix(e.path, "empty") {
			size = 0
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		Expect(os.WriteFile(p, data, 0o600)).To(Succeed())
	}
	// Modes and times last, deepest first, so directory times are not disturbed.
	for i := len(treeLayout) - 1; i >= 0; i-- {
		p := filepath.Join(root, treeLayout[i].path)
		Expect(os.Chmod(p, treeLayout[i].mode)).To(Succeed())
		Expect(os.Chtimes(p, treeTime, treeTime)).To(Succeed())
	}
}

// expectSameTree checks contents, modes and (when times) modification times.
func expectSameTree(src, dst string, times bool) {
	for _, e := range treeLayout {
		sp, dp := filepath.Join(src, e.path), filepath.Join(dst, e.path)
		di, err := os.Stat(dp)
		Expect(err).NotTo(HaveOccurred(), e.path)
		Expect(di.Mode().Perm()).To(Equal(e.mode), e.path)
		if times {
			Expect(di.ModTime().UTC()).To(BeTemporally("==", treeTime), e.path)
		}
		if !strings.HasSuffix(e.path, "/") {
			a, err := os.ReadFile(sp)
			Expect(err).NotTo(HaveOccurred())
			b, err := os.ReadFile(dp)
			Expect(err).NotTo(HaveOccurred())
			Expect(bytes.Equal(a, b)).To(BeTrue(), e.path)
		}
	}
}

var _ = Describe("file transfer", func() {
	var (
		d     *daemon
		local string
	)

	BeforeEach(func() {
		d = startKeyed(nil)
		local = GinkgoT().TempDir()
	})

	for _, mode := range []struct {
		name  string
		flags []string
	}{
		{"scp -O (legacy protocol, built in)", []string{"-O"}},
		{"scp (SFTP protocol)", nil},
	} {
		Context(mode.name, func() {
			scp := func(args ...string) {
				sess := run(d.scpCmd(append(append([]string{}, mode.flags...), args...)...))
				Expect(sess.ExitCode()).To(Equal(0), string(sess.Err.Contents()))
			}

			It("uploads and downloads a file, relative to HOME", func() {
				data := make([]byte, 3<<20+17)
				_, _ = rand.Read(data)
				src := filepath.Join(local, "file.bin")
				Expect(os.WriteFile(src, data, 0o640)).To(Succeed())

				scp(src, d.remote("uploaded.bin"))
				got, err := os.ReadFile(filepath.Join(d.home, "uploaded.bin"))
				Expect(err).NotTo(HaveOccurred())
				Expect(bytes.Equal(got, data)).To(BeTrue())

				back := filepath.Join(local, "back.bin")
				scp(d.remote("uploaded.bin"), back)
				got, err = os.ReadFile(back)
				Expect(err).NotTo(HaveOccurred())
				Expect(bytes.Equal(got, data)).To(BeTrue())
			})

			It("uploads a tree with -r -p, keeping modes and times", func() {
				makeTree(local)
				Expect(os.Mkdir(filepath.Join(d.home, "up"), 0o755)).To(Succeed())
				scp("-r", "-p", filepath.Join(local, "top"), d.remote("up"))
				expectSameTree(local, filepath.Join(d.home, "up"), true)
			})

			It("downloads a tree with -r -p, keeping modes and times", func() {
				remoteRoot := filepath.Join(d.home, "src")
				Expect(os.Mkdir(remoteRoot, 0o755)).To(Succeed())
				makeTree(remoteRoot)
				down := filepath.Join(local, "down")
				Expect(os.Mkdir(down, 0o755)).To(Succeed())
				scp("-r", "-p", d.remote("src/top"), down)
				expectSameTree(remoteRoot, down, true)
			})

			if len(mode.flags) > 0 {
				It("serves the legacy protocol with the built-in engine, not a remote scp binary", func() {
					src := filepath.Join(local, "f")
					Expect(os.WriteFile(src, []byte("built-in"), 0o600)).To(Succeed())
					scp(src, d.remote("f"))
					Expect(d.session.Out).To(gbytes.Say(`"message":"sshd.builtin-started"`))
				})
			}
		})
	}

	It("runs an sftp -b batch: mkdir, put, ls, rename, get, rm", func() {
		data := []byte("sftp payload\n")
		Expect(os.WriteFile(filepath.Join(local, "in.txt"), data, 0o644)).To(Succeed())
		batch := filepath.Join(local, "batch")
		Expect(os.WriteFile(batch, []byte(strings.Join([]string{
			"mkdir work",
			"put " + filepath.Join(local, "in.txt") + " work/a.txt",
			"ls work",
			"rename work/a.txt work/b.txt",
			"get work/b.txt " + filepath.Join(local, "out.txt"),
			"rm work/b.txt",
			"ls -a work",
		}, "\n")+"\n"), 0o644)).To(Succeed())

		args := append(commonOpts(clientKey.PrivateFile), "-P", d.port, "-b", batch, "vcap@127.0.0.1")
		sess := run(exec.Command("sftp", args...))
		Expect(sess.ExitCode()).To(Equal(0), string(sess.Err.Contents()))
		Expect(sess.Out).To(gbytes.Say(`ls work\s+work/a.txt`))

		got, err := os.ReadFile(filepath.Join(local, "out.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(data))
		entries, err := os.ReadDir(filepath.Join(d.home, "work"))
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(BeEmpty())
	})
})
