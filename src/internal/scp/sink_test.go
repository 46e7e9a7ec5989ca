package scp_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("sink (scp -t)", func() {
	var outer, work string

	BeforeEach(func() {
		outer = tempDir()
		work = filepath.Join(outer, "work")
		Expect(os.Mkdir(work, 0o755)).To(Succeed())
	})

	// nothingOutside checks that the spec wrote nothing beside work.
	nothingOutside := func() {
		entries, err := os.ReadDir(outer)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(1))
		Expect(entries[0].Name()).To(Equal("work"))
	}

	It("receives a file into a directory target", func() {
		p := startRun("scp -t .", work)
		p.expectOK()
		p.send("C0640 6 a.txt\n")
		p.expectOK()
		p.send("hello\n\x00")
		p.expectOK()
		code, rest := p.finish()
		Expect(code).To(Equal(0))
		Expect(rest).To(BeEmpty())
		data, err := os.ReadFile(filepath.Join(work, "a.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal("hello\n"))
		st, err := os.Stat(filepath.Join(work, "a.txt"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()&^0o640).To(BeZero(), "mode %v exceeds 0640", st.Mode())
		Expect(st.Mode().Perm() & 0o600).To(Equal(os.FileMode(0o600)))
		nothingOutside()
	})

	It("writes to a file target under its own name and truncates what was there", func() {
		Expect(os.WriteFile(filepath.Join(work, "dest"), []byte("a much longer old content"), 0o644)).To(Succeed())
		p := startRun("scp -t dest", work)
		p.expectOK()
		p.send("C0644 3 whatever\n")
		p.expectOK()
		p.send("new\x00")
		p.expectOK()
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		Expect(os.ReadFile(filepath.Join(work, "dest"))).To(Equal([]byte("new")))
		Expect(filepath.Join(work, "whatever")).NotTo(BeAnExistingFile())
	})

	It("resolves ~ and ~/x against the work directory", func() {
		Expect(os.Mkdir(filepath.Join(work, "in"), 0o755)).To(Succeed())
		for _, target := range []string{"~", "~/in"} {
			p := startRun("scp -t "+target, work)
			p.expectOK()
			p.send("C0644 2 t.txt\n")
			p.expectOK()
			p.send("ok\x00")
			p.expectOK()
			code, _ := p.finish()
			Expect(code).To(Equal(0))
		}
		Expect(filepath.Join(work, "t.txt")).To(BeARegularFile())
		Expect(filepath.Join(work, "in", "t.txt")).To(BeARegularFile())
		nothingOutside()
	})

	It("receives a recursive tree with -p, preserving modes and times", func() {
		src := filepath.Join(tempDir(), "tree")
		Expect(os.Mkdir(src, 0o755)).To(Succeed())
		makeTree(src)
		p := startRun("scp -r -p -t .", work)
		p.expectOK()
		p.upload(src, true)
		code, rest := p.finish()
		Expect(code).To(Equal(0), p.stderr.String())
		Expect(rest).To(BeEmpty())
		Expect(snapshot(filepath.Join(work, "tree"), true)).To(Equal(snapshot(src, true)))
		st, err := os.Stat(filepath.Join(work, "tree"))
		Expect(err).NotTo(HaveOccurred())
		sst, err := os.Stat(src)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.ModTime().Unix()).To(Equal(sst.ModTime().Unix()))
		nothingOutside()
	})

	It("creates the target itself when a directory is sent to a new name", func() {
		src := filepath.Join(tempDir(), "tree")
		Expect(os.Mkdir(src, 0o755)).To(Succeed())
		makeTree(src)
		p := startRun("scp -rt newname", work)
		p.expectOK()
		p.upload(src, false)
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		got := snapshot(filepath.Join(work, "newname"), false)
		want := snapshot(src, false)
		Expect(got).To(HaveLen(len(want)))
		for k, v := range want {
			Expect(got).To(HaveKey(k))
			Expect(got[k].Data).To(Equal(v.Data), k)
		}
	})

	It("prints the records it receives with -v", func() {
		p := startRun("scp -v -t .", work)
		p.expectOK()
		p.send("C0644 1 v\n")
		p.expectOK()
		p.send("x\x00")
		p.expectOK()
		code, _ := p.finish()
		Expect(code).To(Equal(0))
		Expect(p.stderr.String()).To(ContainSubstring("Sink: C0644 1 v"))
	})

	Context("with -d", func() {
		It("accepts a directory target", func() {
			p := startRun("scp -d -t .", work)
			p.expectOK()
			p.send("C0644 1 one\n")
			p.expectOK()
			p.send("1\x00")
			p.expectOK()
			code, _ := p.finish()
			Expect(code).To(Equal(0))
		})

		It("refuses a target that is a file", func() {
			Expect(os.WriteFile(filepath.Join(work, "file"), nil, 0o644)).To(Succeed())
			p := startRun("scp -d -t file", work)
			p.expectReply(2, "file: Not a directory")
			code, _ := p.finish()
			Expect(code).To(Equal(1))
		})

		It("refuses a target that does not exist", func() {
			p := startRun("scp -d -t missing", work)
			p.expectReply(2, "missing: No such file or directory")
			code, _ := p.finish()
			Expect(code).To(Equal(1))
			nothingOutside()
		})
	})

	It("refuses more than one target", func() {
		p := startRun("scp -t a b", work)
		p.expectReply(2, "ambiguous target")
		code, _ := p.finish()
		Expect(code).To(Equal(1))
	})

	It("reports a file it cannot create and goes on with the next one", func() {
		Expect(os.Mkdir(filepath.Join(work, "locked"), 0o555)).To(Succeed())
		var p *peer
		if os.Geteuid() == 0 {
			// root ignores permissions: serve as nobody from the helper.
			Expect(os.Chmod(outer, 0o755)).To(Succeed())
			p = startProcess("scp -t locked", work)
		} else {
			p = startRun("scp -t locked", work)
		}
		p.expectOK()
		p.send("C0644 4 denied\n")
		p.expectReply(1, "locked/denied: Permission denied")
		// The source skips the data of a refused file; the session goes on.
		p.send("C0644 4 again\n")
		p.expectReply(1, "locked/again: Permission denied")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(BeEmpty())
		Expect(listAll(filepath.Join(work, "locked"))).To(Equal([]string{"."}))
	})

	It("reports a directory record whose name is taken by a file", func() {
		Expect(os.WriteFile(filepath.Join(work, "taken"), nil, 0o644)).To(Succeed())
		p := startRun("scp -r -t .", work)
		p.expectOK()
		p.send("D0755 0 taken\n")
		p.expectReply(1, "taken: Not a directory")
		p.send("C0644 1 fine\n")
		p.expectOK()
		p.send("f\x00")
		p.expectOK()
		code, _ := p.finish()
		Expect(code).To(Equal(1))
		Expect(filepath.Join(work, "fine")).To(BeARegularFile())
	})

	It("acknowledges a file whose source failed mid-way but exits 1", func() {
		p := startRun("scp -t .", work)
		p.expectOK()
		p.send("C0644 4 partial\n")
		p.expectOK()
		p.send("\x00\x00\x00\x00\x01scp: partial: Input/output error\n")
		p.expectOK()
		code, _ := p.finish()
		Expect(code).To(Equal(1))
	})

	DescribeTable("refuses names that would leave the target",
		func(records string) {
			p := startRun("scp -r -t .", work)
			p.expectOK()
			p.send(records)
			p.expectReply(2, "unexpected filename")
			code, _ := p.finish()
			Expect(code).To(Equal(1))
			Expect(listAll(work)).To(Equal([]string{"."}))
			nothingOutside()
		},
		Entry("parent", "C0644 4 ..\n"),
		Entry("dot", "C0644 4 .\n"),
		Entry("parent path", "C0644 4 ../evil\n"),
		Entry("absolute path", "C0644 4 /tmp/evil\n"),
		Entry("inner slash", "C0644 4 a/b\n"),
		Entry("empty name", "C0644 4 \n"),
		Entry("NUL in name", "C0644 4 a\x00b\n"),
		Entry("directory parent", "D0755 0 ..\n"),
		Entry("directory dot", "D0755 0 .\n"),
		Entry("directory path", "D0755 0 ../x\n"),
	)

	It("refuses a traversal name inside a received directory", func() {
		p := startRun("scp -r -t .", work)
		p.expectOK()
		p.send("D0755 0 d\n")
		p.expectOK()
		p.send("C0644 4 ../../evil\n")
		p.expectReply(2, "unexpected filename")
		code, _ := p.finish()
		Expect(code).To(Equal(1))
		Expect(listAll(work)).To(Equal([]string{".", "d"}))
		nothingOutside()
	})

	DescribeTable("answers garbage with a fatal error and exit 1",
		func(stream, reason string) {
			p := startRun("scp -t .", work)
			p.expectOK()
			p.send(stream)
			p.expectReply(2, reason)
			code, _ := p.finish()
			Expect(code).To(Equal(1))
			Expect(listAll(work)).To(Equal([]string{"."}))
			nothingOutside()
		},
		Entry("text", "hello there\n", "expected control record"),
		Entry("bare newline", "\n", "unexpected <newline>"),
		Entry("short mode", "C644 1 f\n", "bad mode"),
		Entry("non-octal mode", "C0648 1 f\n", "bad mode"),
		Entry("long mode", "C06444 1 f\n", "mode not delimited"),
		Entry("negative size", "C0644 -1 f\n", "size not present"),
		Entry("letters as size", "C0644 abc f\n", "size not present"),
		Entry("huge size", "C0644 99999999999999999999999 f\n", "size out of range"),
		Entry("size without name", "C0644 5\n", "size not delimited"),
		Entry("directory without -r", "D0755 0 d\n", "received directory without -r"),
		Entry("times without fields", "T\n", "mtime.sec not present"),
		Entry("times missing atime", "T123 0\n", "mtime.usec not delimited"),
		Entry("times bad usec", "T123 1000000 123 0\n", "mtime.usec not delimited"),
		Entry("times trailing junk", "T123 0 123 0 x\n", "atime.usec not delimited"),
		Entry("oversized line", "C0644 1 "+strings.Repeat("n", 5000)+"\n", "line too long"),
	)

	It("treats a truncated stream as a lost connection", func() {
		p := startRun("scp -t .", work)
		p.expectOK()
		p.send("C0644 100 short\n")
		p.expectOK()
		p.send("only ten b")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(ContainSubstring("\x02scp: lost connection"))
		nothingOutside()
	})

	It("treats a stream ending inside a directory as a lost connection", func() {
		p := startRun("scp -r -t .", work)
		p.expectOK()
		p.send("D0755 0 d\n")
		p.expectOK()
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(ContainSubstring("lost connection"))
	})

	It("treats a fatal error from the source as the end", func() {
		p := startRun("scp -t .", work)
		p.expectOK()
		p.send("\x02scp: something broke\n")
		code, rest := p.finish()
		Expect(code).To(Equal(1))
		Expect(rest).To(BeEmpty())
	})

	It("stops when its context is cancelled", func() {
		p := startRun("scp -t .", work)
		p.expectOK()
		p.send("C0644 1000000 slow\n")
		p.expectOK()
		p.send("a few bytes")
		p.cancel()
		Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
		Expect(p.code).To(Equal(1))
	})

	It("stops a recursive receive nested deeper than it allows", func() {
		p := startRun("scp -r -t .", work)
		p.expectOK()
		var b strings.Builder
		for i := 0; i < 300; i++ {
			fmt.Fprintf(&b, "D0755 0 d\n")
		}
		go func() {
			defer GinkgoRecover()
			_, _ = p.w.Write([]byte(b.String()))
		}()
		deadline := time.Now().Add(peerTimeout)
		var kind byte
		for kind == 0 && time.Now().Before(deadline) {
			kind, _ = p.reply()
		}
		Expect(kind).To(Equal(byte(2)))
		code, _ := p.finish()
		Expect(code).To(Equal(1))
	})
})
