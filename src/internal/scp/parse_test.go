package scp_test

import (
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/scp"
)

var _ = Describe("Parse", func() {
	DescribeTable("scp server invocations",
		func(line string, want scp.Command) {
			got, err := scp.Parse(line)
			Expect(err).NotTo(HaveOccurred())
			if want.Paths == nil {
				want.Paths = []string{}
			}
			Expect(*got).To(Equal(want))
		},
		Entry("sink", "scp -t .", scp.Command{Sink: true, Paths: []string{"."}}),
		Entry("source", "scp -f file", scp.Command{Source: true, Paths: []string{"file"}}),
		Entry("all flags apart", "scp -v -r -p -d -t -- /x/y",
			scp.Command{Sink: true, Verbose: true, Recursive: true, PreserveTimes: true, TargetIsDir: true, Paths: []string{"/x/y"}}),
		Entry("combined flags", "scp -prt dir", scp.Command{Sink: true, Recursive: true, PreserveTimes: true, Paths: []string{"dir"}}),
		Entry("several sources", "scp -f a b c", scp.Command{Source: true, Paths: []string{"a", "b", "c"}}),
		Entry("single quotes", "scp -t 'my file.txt'", scp.Command{Sink: true, Paths: []string{"my file.txt"}}),
		Entry("double quotes and escapes", `scp -f "a \"b\" c" d\ e`, scp.Command{Source: true, Paths: []string{`a "b" c`, "d e"}}),
		Entry("quoted quote", `scp -f 'it'\''s'`, scp.Command{Source: true, Paths: []string{"it's"}}),
		Entry("dash path after --", "scp -t -- -odd", scp.Command{Sink: true, Paths: []string{"-odd"}}),
		Entry("extra blanks", "  scp\t-f   x  ", scp.Command{Source: true, Paths: []string{"x"}}),
		Entry("absolute scp", "/usr/bin/scp -f x", scp.Command{Source: true, Paths: []string{"x"}}),
		Entry("tilde and globs kept", "scp -f ~/a*.txt", scp.Command{Source: true, Paths: []string{"~/a*.txt"}}),
		Entry("no operand", "scp -f", scp.Command{Source: true}),
		Entry("hash inside a word", "scp -t a#b", scp.Command{Sink: true, Paths: []string{"a#b"}}),
	)

	DescribeTable("everything else is ErrNotSCP",
		func(line string) {
			_, err := scp.Parse(line)
			Expect(err).To(HaveOccurred())
			Expect(errors.Is(err, scp.ErrNotSCP)).To(BeTrue(), err.Error())
		},
		Entry("empty", ""),
		Entry("blank", "   "),
		Entry("other command", "ls -l"),
		Entry("scp-like name", "scpx -t ."),
		Entry("relative path to scp", "bin/scp -t ."),
		Entry("scp client", "scp a host:b"),
		Entry("both directions", "scp -t -f x"),
		Entry("unknown flag", "scp -q -t ."),
		Entry("command list", "scp -t . ; rm -rf /"),
		Entry("and list", "scp -t . && true"),
		Entry("pipe", "scp -f x | cat"),
		Entry("redirection", "scp -f x > y"),
		Entry("substitution", "scp -f $(id)"),
		Entry("variable", "scp -f $HOME/x"),
		Entry("variable in double quotes", `scp -f "$HOME"`),
		Entry("backquote", "scp -f `id`"),
		Entry("brace expansion", "scp -f {a,b}"),
		Entry("comment", "scp -t . #x"),
		Entry("newline", "scp -t .\nid"),
		Entry("unterminated single quote", "scp -t 'x"),
		Entry("unterminated double quote", `scp -t "x`),
		Entry("trailing backslash", `scp -t x\`),
		Entry("environment prefix", "FOO=1 scp -t ."),
	)
})
