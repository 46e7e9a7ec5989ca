package sshd_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/rawssh"
	"github.com/app-ssh/app-ssh/integration/internal/tcppeer"
)

// hangUpBound is how soon after the target hangs up a tunnel must be gone (issue 14: stock
// OpenSSH needs about 0.2 s).
const hangUpBound = 2 * time.Second

// openFDs counts the open file descriptors of pid.
func openFDs(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

var _ = Describe("forwarded connections whose target hangs up (as OpenSSH's sshd)", func() {
	DescribeTable("ssh -W exits 0 within 2s once the target answered and closed, like OpenSSH's sshd",
		func(start func() *daemon) {
			d := start()
			port := tcppeer.AnswerAndClose("hello from the target\n")
			cmd := d.sshCmd(clientKey.PrivateFile, []string{"-W", fmt.Sprintf("127.0.0.1:%d", port)})
			stdin, err := cmd.StdinPipe() // held open: only the target's hang-up may end the session
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { _ = stdin.Close() })
			sess := startBackground(cmd)
			Eventually(sess.Out, cmdTimeout).Should(gbytes.Say("hello from the target"))
			Eventually(sess, hangUpBound).Should(gexec.Exit(0))
		},
		oursEntry(), stockEntry(),
	)

	DescribeTable("CHANNEL_EOF when the target closes, CHANNEL_CLOSE once the client's EOF arrived, like OpenSSH's sshd",
		func(start func() *daemon) {
			d := start()
			port := tcppeer.AnswerAndClose("one reply")
			c := d.mustGoClient()
			ch, reqs, err := c.OpenChannel("direct-tcpip", ssh.Marshal(directTCPIP{"127.0.0.1", uint32(port), "127.0.0.1", 1}))
			Expect(err).NotTo(HaveOccurred())
			defer ch.Close()

			By("EOF: the reply, then the end of the data, while the channel stays open (half-close)")
			got := make(chan string, 1)
			go func() { b, _ := io.ReadAll(ch); got <- string(b) }()
			Eventually(got, hangUpBound).Should(Receive(Equal("one reply")))
			Consistently(reqs, 300*time.Millisecond).ShouldNot(BeClosed())

			By("CLOSE: right after the client's own EOF")
			Expect(ch.CloseWrite()).To(Succeed())
			Eventually(reqs, hangUpBound).Should(BeClosed())
		},
		oursEntry(), stockEntry(),
	)

	It("frees the socket to the target once the channel closed", func() {
		d := ours()
		port := tcppeer.AnswerAndClose("one reply")
		c := d.mustGoClient()
		sshdPID := d.session.Command.Process.Pid
		base := openFDs(sshdPID)
		ch, reqs, err := c.OpenChannel("direct-tcpip", ssh.Marshal(directTCPIP{"127.0.0.1", uint32(port), "127.0.0.1", 1}))
		Expect(err).NotTo(HaveOccurred())
		defer ch.Close()
		_, _ = io.ReadAll(ch)
		Expect(ch.CloseWrite()).To(Succeed())
		Eventually(reqs, hangUpBound).Should(BeClosed())
		Eventually(func() int { return openFDs(sshdPID) }, hangUpBound).Should(Equal(base))
	})

	// OpenSSH's client closes an -L channel itself once both directions saw EOF, so this one
	// guards the sockets and channels; the two above are the ones clients that wait for the
	// server's CLOSE (ssh -W, and the Go client) depend on.
	It("leaves no socket or channel behind an ssh -L tunnel whose target closed after one reply", func() {
		d := ours()
		port := tcppeer.AnswerAndClose("bye\n")
		lport := freePort()
		tunnel := startBackground(d.sshCmd(clientKey.PrivateFile, []string{
			"-N", "-o", "ExitOnForwardFailure=yes",
			"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lport, port),
		}))
		sshdPID, clientPID := d.session.Command.Process.Pid, tunnel.Command.Process.Pid

		Eventually(func() error { // ssh listens on lport
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
			if err == nil {
				l.Close()
			}
			return err
		}, cmdTimeout, 100*time.Millisecond).Should(HaveOccurred())
		sshdBase, clientBase := openFDs(sshdPID), openFDs(clientPID)

		for range 3 {
			c, err := netDial(itoa(lport))
			Expect(err).NotTo(HaveOccurred())
			_ = c.SetDeadline(time.Now().Add(cmdTimeout))
			b, err := io.ReadAll(c) // ends when the target's hang-up has been passed along
			c.Close()
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).To(Equal("bye\n"))
		}
		Eventually(func() int { return openFDs(sshdPID) }, hangUpBound).Should(Equal(sshdBase), "descriptors in the sshd")
		Eventually(func() int { return openFDs(clientPID) }, hangUpBound).Should(Equal(clientBase), "descriptors in ssh")
		Eventually(func() int {
			return strings.Count(string(d.session.Out.Contents()), `direct-tcpip-closed"`)
		}, hangUpBound).Should(Equal(3), "channels the sshd closed")
	})
})

// listening is the local addresses of the TCP sockets listening on port, as ss prints them.
func listening(port int) []string {
	out, err := exec.Command("ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).Output()
	Expect(err).NotTo(HaveOccurred())
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			addrs = append(addrs, f[3]) // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
		}
	}
	return addrs
}

var _ = Describe("ssh -R listen addresses (OpenSSH's GatewayPorts)", func() {
	remoteForward := func(d *daemon, spec string) int {
		port := freePort()
		startBackground(d.sshCmd(clientKey.PrivateFile, []string{
			"-N", "-o", "ExitOnForwardFailure=yes", "-R", fmt.Sprintf(spec, port) + ":127.0.0.1:9",
		}))
		Eventually(func() []string { return listening(port) }, cmdTimeout, 100*time.Millisecond).ShouldNot(BeEmpty())
		return port
	}

	DescribeTable("binds loopback only whatever the client asks for, like OpenSSH's sshd with GatewayPorts no (the default)",
		func(start func() *daemon) {
			d := start()
			for _, spec := range []string{"*:%d", "0.0.0.0:%d", ":%d", "%d"} {
				port := remoteForward(d, spec)
				// OpenSSH's sshd binds ::1 as well; ours 127.0.0.1 only. Never a wildcard.
				Expect(listening(port)).To(ContainElement(fmt.Sprintf("127.0.0.1:%d", port)), "-R "+spec)
				Expect(listening(port)).To(HaveEach(BeElementOf(fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("[::1]:%d", port))), "-R "+spec)
			}
		},
		oursEntry(), stockEntry(),
	)

	It("binds what the client asks for with -gatewayPorts=clientspecified", func() {
		d := startKeyed(nil, "-gatewayPorts=clientspecified")
		port := remoteForward(d, "*:%d")
		Expect(listening(port)).To(Equal([]string{fmt.Sprintf("*:%d", port)}))
		port = remoteForward(d, "localhost:%d")
		Expect(listening(port)).To(Equal([]string{fmt.Sprintf("127.0.0.1:%d", port)}))
	})

	It("binds all interfaces with -gatewayPorts=yes", func() {
		d := startKeyed(nil, "-gatewayPorts=yes")
		port := remoteForward(d, "127.0.0.1:%d")
		Expect(listening(port)).To(Equal([]string{fmt.Sprintf("*:%d", port)}))
	})
})

var _ = Describe("failures worded with their cause (as OpenSSH's sshd)", func() {
	DescribeTable("refuses a forward to a closed port with \"Connection refused\", like OpenSSH's sshd",
		func(start func() *daemon) {
			d := start()
			closed := freePort()
			sess := run(d.sshCmd(clientKey.PrivateFile, []string{"-o", "LogLevel=INFO", "-W", fmt.Sprintf("127.0.0.1:%d", closed)}))
			Expect(sess.ExitCode()).To(Equal(255))
			Expect(string(sess.Err.Contents())).To(ContainSubstring("open failed: connect failed: Connection refused"))

			c := d.mustGoClient()
			_, _, err := c.OpenChannel("direct-tcpip", ssh.Marshal(directTCPIP{"127.0.0.1", uint32(closed), "127.0.0.1", 1}))
			var oce *ssh.OpenChannelError
			Expect(errors.As(err, &oce)).To(BeTrue(), "%v", err)
			Expect(oce.Reason).To(Equal(ssh.ConnectionFailed))
			Expect(oce.Message).To(ContainSubstring("refused"))
		},
		oursEntry(), stockEntry(),
	)

	DescribeTable("reports a command line over the kernel's limit as \"Argument list too long\" with exit status 1, like OpenSSH's sshd",
		func(start func() *daemon) {
			d := start()
			// 2000 words of 100 bytes: each argument of ssh is small, the joined command is
			// 200 KB, more than one argument of execve may be (MAX_ARG_STRLEN, 128 KiB).
			words := make([]string, 2000)
			for i := range words {
				words[i] = strings.Repeat("x", 99)
			}
			sess := run(d.sshCmd(clientKey.PrivateFile, nil, append([]string{"echo"}, words...)...))
			Expect(sess.ExitCode()).To(Equal(1))
			Expect(string(sess.Err.Contents())).To(MatchRegexp(`/bin/(ba)?sh: Argument list too long`))

			s, err := d.mustGoClient().NewSession()
			Expect(err).NotTo(HaveOccurred())
			var stderr strings.Builder
			s.Stderr = &stderr
			err = s.Run("echo " + strings.Join(words, " "))
			var ee *ssh.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "%v", err)
			Expect(ee.ExitStatus()).To(Equal(1))
			Expect(stderr.String()).To(ContainSubstring("Argument list too long"))
		},
		oursEntry(), stockEntry(),
	)
})

// identify connects to port, sends line and returns everything received until the server
// closed (or 1 s passed: the bound, from the moment line was sent) and whether it closed.
func identify(port, line string) (string, bool) {
	c, err := netDial(port)
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	_, err = io.WriteString(c, line)
	Expect(err).NotTo(HaveOccurred())
	Expect(c.SetReadDeadline(time.Now().Add(time.Second))).To(Succeed())
	b, err := io.ReadAll(c)
	return string(b), err == nil
}

var _ = Describe("client identification lines (as OpenSSH's sshd)", func() {
	DescribeTable("answers a bad identification with OpenSSH's one-line reason, then closes within 1s",
		func(start func() *daemon, line, reason string) {
			d := start()
			got, closed := identify(d.port, line)
			Expect(closed).To(BeTrue(), "closed within 1s; received %q", got)
			Expect(got).To(MatchRegexp(`^SSH-2\.0-[^\r\n]+\r\n` + regexp.QuoteMeta(reason) + `\r\n$`))
		},
		oursEntry("SSH-1.5-OldClient\r\n", "Protocol major versions differ."),
		stockEntry("SSH-1.5-OldClient\r\n", "Protocol major versions differ."),
		oursEntry("GET / HTTP/1.1\r\n", "Invalid SSH identification string."),
		stockEntry("GET / HTTP/1.1\r\n", "Invalid SSH identification string."),
	)
})

var _ = Describe("attacker-controlled strings in the log", func() {
	It("keeps every log line under 2 KiB for a 100 KiB user name, subsystem name and key exchange offer, user names under 1 KiB", func() {
		d := startKeyed(nil)
		huge := strings.Repeat("u", 100<<10)
		c, err := ssh.Dial("tcp", "127.0.0.1:"+d.port, &ssh.ClientConfig{
			User: huge, Auth: []ssh.AuthMethod{ssh.PublicKeys(clientKey.Signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.RequestSubsystem(strings.Repeat("s", 30<<10))).NotTo(Succeed())
		s.Close()

		By("a key exchange offer of 100 KiB of names (x/crypto quotes the peer's offer in its error)")
		raw, err := netDial(d.port)
		Expect(err).NotTo(HaveOccurred())
		defer raw.Close()
		Expect(rawssh.KexInitWithHugeList(raw, 100<<10)).To(Succeed())
		Expect(raw.SetReadDeadline(time.Now().Add(cmdTimeout))).To(Succeed())
		_, _ = io.Copy(io.Discard, raw) // until the sshd gives up on it

		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say(`subsystem-refused`))
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say(`handshake-failed`))
		out := string(d.session.Out.Contents())
		Expect(out).To(MatchRegexp(`connection-opened.*"user":"u{256}…\[truncated 102144 bytes\]"`))
		for _, line := range strings.Split(out, "\n") {
			limit := 2048
			if strings.Contains(line, `"user":`) {
				limit = 1024
			}
			Expect(len(line)).To(BeNumerically("<", limit), "log line %.200q...", line)
		}
	})
})
