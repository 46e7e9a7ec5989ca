package proxy_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
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

var _ = Describe("ssh-proxy relaying what clients rely on in OpenSSH's sshd", func() {
	var e *env

	BeforeEach(func() {
		e = newEnv()
		e.startProxy(proxyOpts{})
	})

	It("lets ssh -W exit 0 within 2s once the target answered and closed, like OpenSSH's sshd", func() {
		port := tcppeer.AnswerAndClose("hello through the proxy\n")
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort),
			"-W", fmt.Sprintf("127.0.0.1:%d", port), e.user()+"@127.0.0.1")
		cmd := exec.Command("sshpass", append([]string{"-e", "ssh"}, args...)...)
		cmd.Env = append(os.Environ(), "SSHPASS="+e.code())
		stdin, err := cmd.StdinPipe() // held open: only the target's hang-up may end the session
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = stdin.Close() })
		sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { sess.Kill().Wait(10 * time.Second) })

		Eventually(sess.Out, 30*time.Second).Should(gbytes.Say("hello through the proxy"))
		Eventually(sess, 2*time.Second).Should(gexec.Exit(0))
	})

	It("passes on why a forward or a command failed: \"Connection refused\", \"Argument list too long\", like OpenSSH's sshd", func() {
		closed := freePort()
		r := e.ssh(e.code(), nil, "-o", "LogLevel=INFO", "-W", fmt.Sprintf("127.0.0.1:%d", closed))
		Expect(r.code).To(Equal(255))
		Expect(r.stderr).To(ContainSubstring("open failed: connect failed: Connection refused"))

		words := make([]string, 2000) // a 200 KB command line, in arguments ssh itself accepts
		for i := range words {
			words[i] = strings.Repeat("x", 99)
		}
		r = e.ssh(e.code(), nil, append([]string{"echo"}, words...)...)
		Expect(r.code).To(Equal(1))
		Expect(r.stderr).To(ContainSubstring("Argument list too long"))
	})
})

var _ = Describe("ssh-proxy answering client identification lines (as OpenSSH's sshd)", func() {
	DescribeTable("answers a bad identification with OpenSSH's one-line reason, then closes within 1s",
		func(line, reason string) {
			e := newEnv()
			e.startProxy(proxyOpts{})
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(e.proxyPort), 10*time.Second)
			Expect(err).NotTo(HaveOccurred())
			defer c.Close()
			_, err = io.WriteString(c, line)
			Expect(err).NotTo(HaveOccurred())
			Expect(c.SetReadDeadline(time.Now().Add(time.Second))).To(Succeed())
			got, err := io.ReadAll(c)
			Expect(err).NotTo(HaveOccurred(), "closed within 1s; received %q", got)
			Expect(string(got)).To(MatchRegexp(`^SSH-2\.0-\S+\r\n` + regexp.QuoteMeta(reason) + `\r\n$`))
		},
		Entry("an SSH-1.5 client, like OpenSSH's sshd", "SSH-1.5-OldClient\r\n", "Protocol major versions differ."),
		Entry("a garbage line, like OpenSSH's sshd", "GET / HTTP/1.1\r\n", "Invalid SSH identification string."),
	)
})

var _ = Describe("ssh-proxy logging attacker-controlled strings", func() {
	var e *env

	BeforeEach(func() {
		e = newEnv()
		e.startProxy(proxyOpts{})
	})

	// each proxy log line is under limit bytes.
	linesUnder := func(limit int) {
		GinkgoHelper()
		for _, line := range strings.Split(e.proxyLog(), "\n") {
			Expect(len(line)).To(BeNumerically("<", limit), "log line %.200q...", line)
		}
	}

	It("keeps log lines under 1 KiB for a 100 KiB user name", func() {
		_, err := ssh.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.proxyPort), &ssh.ClientConfig{
			User: strings.Repeat("u", 100<<10), Auth: []ssh.AuthMethod{ssh.Password("not-a-code")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		Expect(err).To(HaveOccurred())
		Eventually(e.proxyLog, 10*time.Second).Should(MatchRegexp(`authentication-refused.*"ssh_user":"u{256}…\[truncated 102144 bytes\]"`))
		linesUnder(1024)
	})

	It("keeps log lines under 2 KiB for a 100 KiB key exchange offer (x/crypto quotes the peer's offer in its error)", func() {
		raw, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(e.proxyPort), 10*time.Second)
		Expect(err).NotTo(HaveOccurred())
		defer raw.Close()
		Expect(rawssh.KexInitWithHugeList(raw, 100<<10)).To(Succeed())
		Expect(raw.SetReadDeadline(time.Now().Add(30 * time.Second))).To(Succeed())
		_, _ = io.Copy(io.Discard, raw) // until the proxy gives up on it
		Eventually(e.proxyLog, 10*time.Second).Should(MatchRegexp(`handshake-failed.*no common algorithm`))
		linesUnder(2048)
	})
})
