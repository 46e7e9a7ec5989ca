package scp_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/scp"
)

// OpenSSH's own "scp -t" is the oracle: the same byte stream must produce
// the same replies, exit status and files. The only intended difference is
// that fatal errors are flagged \x02 where OpenSSH sends \x01 and exits.
var _ = Describe("sink compared with OpenSSH's scp -t", func() {
	const scpBin = "/usr/bin/scp"

	DescribeTable("same replies, status and files",
		func(flags string, stream string) {
			_, err := os.Stat(scpBin)
			Expect(err).NotTo(HaveOccurred(), "the OpenSSH client (package openssh-client) is required")
			outer := tempDir()
			theirs := filepath.Join(outer, "theirs")
			ours := filepath.Join(outer, "ours")
			Expect(os.Mkdir(theirs, 0o755)).To(Succeed())
			Expect(os.Mkdir(ours, 0o755)).To(Succeed())

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			args := []string{"-t", "."}
			if flags != "" {
				args = append([]string{flags}, args...)
			}
			ref := exec.CommandContext(ctx, scpBin, args...)
			ref.Dir = theirs
			ref.Stdin = bytes.NewReader([]byte(stream))
			var refOut bytes.Buffer
			ref.Stdout = &refOut
			ref.Stderr = io.Discard
			refCode := 0
			if err := ref.Run(); err != nil {
				ee, ok := err.(*exec.ExitError)
				Expect(ok).To(BeTrue(), err.Error())
				refCode = ee.ExitCode()
			}

			line := "scp -t ."
			if flags != "" {
				line = "scp " + flags + " -t ."
			}
			cmd, err := scp.Parse(line)
			Expect(err).NotTo(HaveOccurred())
			var out bytes.Buffer
			code := cmd.Run(ctx, bytes.NewReader([]byte(stream)), &out, io.Discard, ours)

			Expect(code).To(Equal(refCode))
			Expect(string(bytes.ReplaceAll(out.Bytes(), []byte{2}, []byte{1}))).To(Equal(refOut.String()))
			Expect(snapshot(ours, true)).To(Equal(snapshot(theirs, true)))
		},
		Entry("one file", "", "C0640 6 a.txt\nhello\n\x00"),
		Entry("two files, one empty", "", "C0644 3 a\nabc\x00C0600 0 b\n\x00"),
		Entry("times with -p", "-p", "T1000000000 0 1000000100 0\nC0751 2 x\nxy\x00"),
		Entry("tree with -r -p", "-rp",
			"T981173106 0 981173106 0\nD0750 0 dir\nT981173000 0 981173000 0\nC0600 4 f\nabcd\x00D0700 0 sub\nC0444 0 empty\n\x00E\nE\n"),
		Entry("tree without -p", "-r", "D0755 0 d\nC0644 1 f\nf\x00E\n"),
		Entry("warning from the source", "", "C0644 2 w\nxy\x01scp: w: read error\n"),
		Entry("parent name", "", "C0644 4 ..\nabcd\x00"),
		Entry("dot directory", "-r", "D0755 0 .\nE\n"),
		Entry("slash in name", "", "C0644 1 a/b\nx\x00"),
		Entry("bad mode", "", "C06x4 1 f\nf\x00"),
		Entry("long mode", "", "C06444 1 f\nf\x00"),
		Entry("size not present", "", "C0644 x f\nf\x00"),
		Entry("size not delimited", "", "C0644 5\n"),
		Entry("directory without -r", "", "D0755 0 d\nE\n"),
		Entry("times not delimited", "-p", "T1 0\n"),
		Entry("usec out of range", "-p", "T1 1000000 1 0\n"),
		Entry("unexpected newline", "", "\n"),
		Entry("E at the top", "", "E\n"),
	)
})
