package payload_test

import (
	"errors"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

type ptyMsg struct {
	Term             string
	Cols, Rows, W, H uint32
	Modes            string
}

var _ = Describe("request payloads", func() {
	Describe("env", func() {
		It("decodes a name and value", func() {
			e, err := payload.ParseEnv(ssh.Marshal(struct{ N, V string }{"LANG", "C.UTF-8"}))
			Expect(err).NotTo(HaveOccurred())
			Expect(e).To(Equal(payload.Env{Name: "LANG", Value: "C.UTF-8"}))
		})

		DescribeTable("refuses",
			func(b []byte) {
				_, err := payload.ParseEnv(b)
				Expect(errors.Is(err, payload.ErrMalformed)).To(BeTrue(), "got %v", err)
			},
			Entry("empty", []byte{}),
			Entry("truncated length", []byte{0, 0}),
			Entry("length beyond data", []byte{0, 0, 0, 5, 'A'}),
			Entry("missing value", ssh.Marshal(struct{ N string }{"A"})),
			Entry("trailing bytes", append(ssh.Marshal(struct{ N, V string }{"A", "b"}), 0)),
			Entry("empty name", ssh.Marshal(struct{ N, V string }{"", "b"})),
			Entry("= in name", ssh.Marshal(struct{ N, V string }{"A=B", "b"})),
			Entry("NUL in value", ssh.Marshal(struct{ N, V string }{"A", "b\x00c"})),
			Entry("huge name", ssh.Marshal(struct{ N, V string }{strings.Repeat("N", payload.MaxEnvNameLen+1), "b"})),
			Entry("huge value", ssh.Marshal(struct{ N, V string }{"A", strings.Repeat("v", payload.MaxEnvValueLen+1)})),
			Entry("length near 4 GiB", []byte{0xff, 0xff, 0xff, 0xff, 'x'}),
		)
	})

	Describe("pty-req", func() {
		It("decodes TERM, size and modes up to TTY_OP_END", func() {
			modes := string([]byte{53, 0, 0, 0, 1, 128, 0, 0, 0x96, 0, 0, 9, 9, 9, 9, 9})
			p, err := payload.ParsePtyReq(ssh.Marshal(ptyMsg{"xterm-256color", 120, 40, 0, 0, modes}))
			Expect(err).NotTo(HaveOccurred())
			Expect(p.Term).To(Equal("xterm-256color"))
			Expect(p.Cols).To(BeEquivalentTo(120))
			Expect(p.Rows).To(BeEquivalentTo(40))
			Expect(p.Modes).To(Equal([]payload.Mode{{Opcode: 53, Value: 1}, {Opcode: 128, Value: 38400}}))
		})

		It("stops at opcodes from 160 on", func() {
			m, err := payload.ParseModes([]byte{53, 0, 0, 0, 0, 200, 1})
			Expect(err).NotTo(HaveOccurred())
			Expect(m).To(HaveLen(1))
		})

		DescribeTable("refuses",
			func(b []byte) {
				_, err := payload.ParsePtyReq(b)
				Expect(errors.Is(err, payload.ErrMalformed)).To(BeTrue(), "got %v", err)
			},
			Entry("truncated", []byte{0, 0, 0, 1, 'x', 0, 0}),
			Entry("huge TERM", ssh.Marshal(ptyMsg{strings.Repeat("t", payload.MaxTermLen+1), 80, 24, 0, 0, ""})),
			Entry("huge modes", ssh.Marshal(ptyMsg{"xterm", 80, 24, 0, 0, strings.Repeat("\x35\x00\x00\x00\x01", 1000)})),
			Entry("truncated mode", ssh.Marshal(ptyMsg{"xterm", 80, 24, 0, 0, "\x35\x00"})),
			Entry("too many columns", ssh.Marshal(ptyMsg{"xterm", 70000, 24, 0, 0, ""})),
			Entry("trailing bytes", append(ssh.Marshal(ptyMsg{"xterm", 80, 24, 0, 0, ""}), 1)),
		)
	})

	It("decodes window-change and refuses oversize dimensions", func() {
		w, err := payload.ParseWindowChange(ssh.Marshal(struct{ C, R, W, H uint32 }{132, 45, 0, 0}))
		Expect(err).NotTo(HaveOccurred())
		Expect(w).To(Equal(payload.WindowChange{Cols: 132, Rows: 45}))
		_, err = payload.ParseWindowChange(ssh.Marshal(struct{ C, R, W, H uint32 }{132, 1 << 20, 0, 0}))
		Expect(err).To(HaveOccurred())
	})

	It("decodes exec, subsystem and signal", func() {
		c, err := payload.ParseExec(ssh.Marshal(struct{ C string }{"echo hi"}))
		Expect(err).NotTo(HaveOccurred())
		Expect(c).To(Equal("echo hi"))
		_, err = payload.ParseExec(ssh.Marshal(struct{ C string }{"a\x00b"}))
		Expect(err).To(HaveOccurred())
		n, err := payload.ParseSubsystem(ssh.Marshal(struct{ N string }{"sftp"}))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal("sftp"))
		sig, err := payload.ParseSignal(ssh.Marshal(struct{ N string }{"TERM"}))
		Expect(err).NotTo(HaveOccurred())
		Expect(sig).To(Equal("TERM"))
		_, err = payload.ParseSignal(ssh.Marshal(struct{ N string }{strings.Repeat("S", 100)}))
		Expect(err).To(HaveOccurred())
	})

	It("decodes tcpip-forward and direct-tcpip, refusing bad ports and hosts", func() {
		f, err := payload.ParseTCPIPForward(ssh.Marshal(struct {
			A string
			P uint32
		}{"localhost", 0}))
		Expect(err).NotTo(HaveOccurred())
		Expect(f).To(Equal(payload.TCPIPForward{Address: "localhost", Port: 0}))
		_, err = payload.ParseTCPIPForward(ssh.Marshal(struct {
			A string
			P uint32
		}{"localhost", 70000}))
		Expect(err).To(HaveOccurred())

		type dt struct {
			H  string
			P  uint32
			OH string
			OP uint32
		}
		d, err := payload.ParseDirectTCPIP(ssh.Marshal(dt{"10.0.0.1", 8080, "127.0.0.1", 5555}))
		Expect(err).NotTo(HaveOccurred())
		Expect(d).To(Equal(payload.DirectTCPIP{Host: "10.0.0.1", Port: 8080, OriginHost: "127.0.0.1", OriginPort: 5555}))
		for _, bad := range []dt{{"", 80, "", 0}, {"a b", 80, "", 0}, {"h", 0, "", 0}, {"h", 65536, "", 0}, {"/etc/x", 80, "", 0}} {
			_, err = payload.ParseDirectTCPIP(ssh.Marshal(bad))
			Expect(err).To(HaveOccurred(), "%+v", bad)
		}
	})

	It("encodes exit-signal and forwarded-tcpip like ssh.Marshal", func() {
		Expect(payload.ExitSignal("TERM", true, "")).To(Equal(ssh.Marshal(struct {
			S    string
			Core bool
			M, L string
		}{"TERM", true, "", ""})))
		Expect(payload.ForwardedTCPIP("localhost", 4000, "127.0.0.1", 5)).To(Equal(ssh.Marshal(struct {
			A  string
			P  uint32
			OA string
			OP uint32
		}{"localhost", 4000, "127.0.0.1", 5})))
	})
})
