package sshd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gleak"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
	"github.com/app-ssh/app-ssh/internal/sshd"
)

const wait = 20 * time.Second

type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	home   string
}

func newSigner() ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	return s
}

func serve(client ssh.Signer, mutate func(*sshdconfig.Config)) *running {
	home := GinkgoT().TempDir()
	GinkgoT().Setenv("HOME", home)
	cfg := sshdconfig.Default()
	cfg.AuthorizedKeys = []string{string(ssh.MarshalAuthorizedKey(client.PublicKey()))}
	cfg.KeepaliveInterval = 0
	if mutate != nil {
		mutate(&cfg)
	}
	resolved, probs := cfg.Validate(sshdconfig.YAMLNames)
	Expect(probs).To(BeEmpty())
	srv, err := sshd.New(sshd.Options{Config: resolved, Logger: nil, Builtin: sshd.SCPBuiltin})
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1), home: home}
	go func() { r.done <- srv.Serve(ctx, ln) }()
	DeferCleanup(func() {
		cancel()
		Eventually(r.done, wait).Should(Receive(BeNil()))
	})
	return r
}

func dial(addr string, s ssh.Signer) *ssh.Client {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: "vcap", Auth: []ssh.AuthMethod{ssh.PublicKeys(s)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = c.Close() })
	return c
}

var _ = Describe("Server", func() {
	var (
		client ssh.Signer
		base   []gleak.Goroutine
	)

	BeforeEach(func() {
		base = gleak.Goroutines()
		client = newSigner()
		// Registered first, so it runs last: after the server stopped and clients closed.
		DeferCleanup(func() {
			Eventually(gleak.Goroutines, wait).ShouldNot(gleak.HaveLeaked(base))
		})
	})

	It("runs exec commands with separate stdout/stderr and exit status", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, errOut := gbytes.NewBuffer(), gbytes.NewBuffer()
		s.Stdout, s.Stderr = out, errOut
		err = s.Run("echo out; echo err >&2; exit 7")
		var ee *ssh.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue())
		Expect(ee.ExitStatus()).To(Equal(7))
		Expect(string(out.Contents())).To(Equal("out\n"))
		Expect(string(errOut.Contents())).To(Equal("err\n"))
	})

	It("applies the pty size and terminal modes, and window changes", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.RequestPty("vt220", 33, 111, ssh.TerminalModes{ssh.ECHO: 0, ssh.ICRNL: 1})).To(Succeed())
		out, err := s.Output("stty -a; echo TERM=$TERM")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(ContainSubstring("rows 33; columns 111"))
		Expect(string(out)).To(MatchRegexp(`(^|\s)-echo(\s|$)`))
		Expect(string(out)).To(ContainSubstring("TERM=vt220"))

		s2, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s2.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 0})).To(Succeed())
		stdin, err := s2.StdinPipe()
		Expect(err).NotTo(HaveOccurred())
		buf := gbytes.NewBuffer()
		s2.Stdout = buf
		Expect(s2.Start("read a; stty size; while read b; do stty size; [ \"$(stty size)\" = '50 132' ] && exit 0; done")).To(Succeed())
		_, _ = stdin.Write([]byte("go\n"))
		Eventually(buf, wait).Should(gbytes.Say("24 80"))
		Expect(s2.WindowChange(50, 132)).To(Succeed())
		// The resize is a channel request and the line is channel data: the daemon applies the
		// one beside the other, so ask until the shell sees the new size.
		Eventually(func() *gbytes.Buffer {
			_, _ = stdin.Write([]byte("go\n"))
			return buf
		}, wait, 200*time.Millisecond).Should(gbytes.Say("50 132"))
		Expect(s2.Wait()).To(Succeed())
	})

	It("refuses env after the program started and beyond the per-session limits", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		accepted := 0
		for i := 0; i < 300; i++ {
			if s.Setenv("V"+strconv.Itoa(i), "x") == nil {
				accepted++
			}
		}
		Expect(accepted).To(Equal(256))
		stdin, err := s.StdinPipe()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Start("cat")).To(Succeed())
		Expect(s.Setenv("LATE", "x")).NotTo(Succeed())
		stdin.Close()
		Expect(s.Wait()).To(Succeed())
	})

	It("gives processes diego-sshd's environment; clients cannot change HOME or USER", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Setenv("HOME", "/elsewhere")).To(Succeed())
		Expect(s.Setenv("MINE", "1")).To(Succeed())
		out, err := s.Output(`echo "$PATH|$LANG|$HOME|$MINE"`)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("/bin:/usr/bin|en_US.UTF8|" + r.home + "|1\n"))
	})

	It("opens and cancels -R listeners, and refuses direct-tcpip to closed ports", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		ln, err := c.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := ln.Addr().(*net.TCPAddr).Port
		Expect(port).NotTo(BeZero())

		accepted := make(chan string, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				accepted <- err.Error()
				return
			}
			defer conn.Close()
			b, _ := io.ReadAll(io.LimitReader(conn, 5))
			_, _ = conn.Write([]byte("pong"))
			accepted <- string(b)
		}()
		tcp, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		_, _ = tcp.Write([]byte("ping!"))
		Eventually(accepted, wait).Should(Receive(Equal("ping!")))
		reply, _ := io.ReadAll(tcp)
		Expect(string(reply)).To(Equal("pong"))
		tcp.Close()

		Expect(ln.Close()).To(Succeed()) // cancel-tcpip-forward
		Eventually(func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}, wait).Should(HaveOccurred())

		closed, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		closedAddr := closed.Addr().String()
		closed.Close()
		_, err = c.Dial("tcp", closedAddr)
		var oce *ssh.OpenChannelError
		Expect(errors.As(err, &oce)).To(BeTrue(), "got %v", err)
		Expect(oce.Reason).To(Equal(ssh.ConnectionFailed))
	})

	It("hangs up running processes when the server stops", func() {
		r := serve(client, nil)
		c := dial(r.addr, client)
		marker := filepath.Join(r.home, "hup")
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out := gbytes.NewBuffer()
		s.Stdout = out
		Expect(s.Start("trap 'echo hup > " + marker + "; exit 0' HUP; echo ready; for i in $(seq 600); do sleep 0.1; done")).To(Succeed())
		Eventually(out, wait).Should(gbytes.Say("ready"))
		r.cancel()
		Eventually(r.done, wait).Should(Receive(BeNil()))
		b, err := os.ReadFile(marker)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(string(b))).To(Equal("hup"))
		r.done <- nil // for the cleanup
	})

	It("refuses keys it does not know", func() {
		r := serve(client, nil)
		_, err := ssh.Dial("tcp", r.addr, &ssh.ClientConfig{
			User: "vcap", Auth: []ssh.AuthMethod{ssh.PublicKeys(newSigner())},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		Expect(err).To(HaveOccurred())
	})
})
