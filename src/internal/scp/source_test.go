package scp_test

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("source (scp -f)", func() {
	var work, dest string

	BeforeEach(func() {
		outer := tempDir()
		work = filepath.Join(outer, "work")
		dest = filepath.Join(outer, "dest")
		Expect(os.Mkdir(work, 0o755)).To(Succeed())
		Expect(os.Mkdir(dest, 0o755)).To(Succeed())
	})

	It("waits for the sink's go-ahead, then sends one file", func() {
		Expect(os.WriteFile(filepath.Join(work, "a.txt"), []byte("hello\n"), 0o640)).To(Succeed())
		Expect(os.Chmod(filepath.Join(work, "a.txt"), 0o640)).To(Succeed())
		p := startRun("scp -f a.txt", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0640 6 a.txt\n"))
		p.send("\x00")
		p.expectRaw("hello\n\x00")
		p.send("\x00")
		code, rest := p.finish()
		Expect(code).To(Equal(0))
		Expect(rest).To(BeEmpty())
	})

	It("sends a recursive tree with -p so that modes and times survive", func() {
		src := filepath.Join(work, "tree")
		Expect(os.Mkdir(src, 0o755)).To(Succeed())
		makeTree(src)
		p := startRun("scp -r -p -f tree", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(0), strings.Join(p.messages, "\n"))
		Expect(p.messages).To(BeEmpty())
		Expect(snapshot(filepath.Join(dest, "tree"), true)).To(Equal(snapshot(src, true)))
		st, err := os.Stat(filepath.Join(dest, "tree"))
		Expect(err).NotTo(HaveOccurred())
		sst, err := os.Stat(src)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.ModTime().Unix()).To(Equal(sst.ModTime().Unix()))
	})

	It("sends T records before C and D only with -p", func() {
		Expect(os.WriteFile(filepath.Join(work, "f"), []byte("x"), 0o644)).To(Succeed())
		when := time.Date(2010, 1, 2, 3, 4, 5, 0, time.UTC)
		Expect(os.Chtimes(filepath.Join(work, "f"), when.Add(time.Hour), when)).To(Succeed())
		p := startRun("scp -p -f f", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("T1262401445 0 1262405045 0\n"))
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0644 1 f\n"))
		p.send("\x00")
		p.expectRaw("x\x00")
		p.send("\x00")
		code, rest := p.finish()
		Expect(code).To(Equal(0))
		Expect(rest).To(BeEmpty())
	})

	It("resolves ~ paths and expands globs", func() {
		for _, n := range []string{"a1.txt", "a2.txt", "b.txt"} {
			Expect(os.WriteFile(filepath.Join(work, n), []byte(n), 0o644)).To(Succeed())
		}
		p := startRun("scp -f ~/a*.txt ~/b.txt", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		Expect(listAll(dest)).To(Equal([]string{".", "a1.txt", "a2.txt", "b.txt"}))
	})

	It("sends a quoted name with spaces", func() {
		Expect(os.WriteFile(filepath.Join(work, "my file.txt"), []byte("spaced"), 0o644)).To(Succeed())
		p := startRun("scp -f 'my file.txt'", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		Expect(os.ReadFile(filepath.Join(dest, "my file.txt"))).To(Equal([]byte("spaced")))
	})

	It("reports a missing file, sends the others and exits 1", func() {
		Expect(os.WriteFile(filepath.Join(work, "there"), []byte("here"), 0o644)).To(Succeed())
		p := startRun("scp -f missing there", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(1))
		Expect(p.messages).To(ConsistOf("scp: missing: No such file or directory"))
		Expect(listAll(dest)).To(Equal([]string{".", "there"}))
	})

	It("reports a directory without -r and other non-regular files", func() {
		Expect(os.Mkdir(filepath.Join(work, "dir"), 0o755)).To(Succeed())
		p := startRun("scp -f dir /dev/null", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(1))
		Expect(p.messages).To(ConsistOf("scp: dir: not a regular file", "scp: /dev/null: not a regular file"))
		Expect(listAll(dest)).To(Equal([]string{"."}))
	})

	It("reports a file it may not read", func() {
		Expect(os.WriteFile(filepath.Join(work, "secret"), []byte("no"), 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(work, "public"), []byte("yes"), 0o644)).To(Succeed())
		var p *peer
		if os.Geteuid() == 0 {
			// root ignores permissions: serve as nobody from the helper.
			Expect(os.Chmod(filepath.Dir(work), 0o755)).To(Succeed())
			p = startProcess("scp -f secret public", work)
		} else {
			Expect(os.Chmod(filepath.Join(work, "secret"), 0)).To(Succeed())
			p = startRun("scp -f secret public", work)
		}
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(1))
		Expect(p.messages).To(ConsistOf("scp: secret: Permission denied"))
		Expect(listAll(dest)).To(Equal([]string{".", "public"}))
	})

	It("pads a file that shrinks while being sent and ends it with a warning", func() {
		f := filepath.Join(work, "shrinks")
		Expect(os.WriteFile(f, []byte("abcdefgh"), 0o644)).To(Succeed())
		p := startRun("scp -f shrinks", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0644 8 shrinks\n"))
		// The size is announced; the data is read only after the ack.
		Expect(os.Truncate(f, 3)).To(Succeed())
		p.send("\x00")
		p.expectRaw("abc\x00\x00\x00\x00\x00")
		p.expectReply(1, "shrinks: file shrank while being sent")
		p.send("\x00")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(BeEmpty())
	})

	It("skips a file the sink refuses and goes on", func() {
		Expect(os.WriteFile(filepath.Join(work, "one"), []byte("1111"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(work, "two"), []byte("22"), 0o644)).To(Succeed())
		p := startRun("scp -f one two", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0644 4 one\n"))
		p.send("\x01scp: one: Permission denied\n")
		Expect(p.readLine()).To(Equal("C0644 2 two\n"))
		p.send("\x00")
		p.expectRaw("22\x00")
		p.send("\x00")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(BeEmpty())
	})

	It("stops at a fatal reply from the sink", func() {
		Expect(os.WriteFile(filepath.Join(work, "one"), []byte("1"), 0o644)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(work, "two"), []byte("2"), 0o644)).To(Succeed())
		p := startRun("scp -f one two", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0644 1 one\n"))
		p.send("\x02scp: no space\n")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(BeEmpty())
	})

	It("prints what it sends with -v", func() {
		Expect(os.WriteFile(filepath.Join(work, "v"), []byte("v"), 0o644)).To(Succeed())
		p := startRun("scp -v -p -f v", work)
		p.download(dest)
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		Expect(p.stderr.String()).To(ContainSubstring("Sending file modes: C0644 1 v"))
		Expect(p.stderr.String()).To(ContainSubstring("Sending file timestamps: T"))
	})

	It("stops when its context is cancelled before the sink answers", func() {
		Expect(os.WriteFile(filepath.Join(work, "f"), []byte("f"), 0o644)).To(Succeed())
		p := startRun("scp -f f", work)
		p.cancel()
		Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
		Expect(p.code).To(Equal(1))
	})

	It("stops when its context is cancelled in the middle of a large file", func() {
		big := make([]byte, 8<<20)
		Expect(os.WriteFile(filepath.Join(work, "big"), big, 0o644)).To(Succeed())
		p := startRun("scp -f big", work)
		p.send("\x00")
		Expect(p.readLine()).To(Equal("C0644 8388608 big\n"))
		p.send("\x00")
		// Read a little, then stop reading and cancel.
		head := make([]byte, 4096)
		_, err := p.r.Read(head)
		Expect(err).NotTo(HaveOccurred())
		p.cancel()
		Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
		Expect(p.code).To(Equal(1))
	})
})
