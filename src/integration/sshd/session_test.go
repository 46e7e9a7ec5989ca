package sshd_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/creack/pty"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"
)

var _ = Describe("sessions", func() {
	var d *daemon

	BeforeEach(func() {
		d = startKeyed(nil)
	})

	It("runs an interactive shell with ssh -tt: typed command output and exit code", func() {
		cmd := d.sshCmd(clientKey.PrivateFile, []string{"-tt"})
		cmd.Stdin = strings.NewReader("echo typed-$((6*7))\nexit 5\n")
		sess := run(cmd)
		Expect(sess.ExitCode()).To(Equal(5))
		Expect(sess.Out).To(gbytes.Say("typed-42"))
	})

	DescribeTable("exec exit codes",
		func(command string, code int) {
			sess := run(d.sshCmd(clientKey.PrivateFile, nil, command))
			Expect(sess.ExitCode()).To(Equal(code))
		},
		Entry("exit 0", "true", 0),
		Entry("exit 1", "false", 1),
		Entry("exit 42", "exit 42", 42),
	)

	It("keeps stderr separate from stdout without a pty", func() {
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, "echo to-out; echo to-err >&2"))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).To(Equal("to-out\n"))
		Expect(string(sess.Err.Contents())).To(ContainSubstring("to-err"))
		Expect(string(sess.Err.Contents())).NotTo(ContainSubstring("to-out"))
	})

	It("reports a signal death as exit-signal", func() {
		By("the OpenSSH client exiting 255")
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, "kill -TERM $$"))
		Expect(sess.ExitCode()).To(Equal(255))

		By("the exit-signal message carrying the signal name")
		c := d.mustGoClient()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		defer s.Close()
		err = s.Run("kill -USR1 $$")
		var ee *ssh.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "got %v", err)
		Expect(ee.Signal()).To(Equal("USR1"))
	})

	It("delivers signal requests to the process", func() {
		c := d.mustGoClient()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		defer s.Close()
		out := gbytes.NewBuffer()
		s.Stdout = out
		Expect(s.Start("trap 'echo got-int; exit 3' INT; echo ready; for i in $(seq 600); do sleep 0.1; done")).To(Succeed())
		Eventually(out, startTimeout).Should(gbytes.Say("ready"))
		Expect(s.Signal(ssh.SIGINT)).To(Succeed())
		done := make(chan error, 1)
		go func() { done <- s.Wait() }()
		var werr error
		Eventually(done, cmdTimeout).Should(Receive(&werr))
		var ee *ssh.ExitError
		Expect(errors.As(werr, &ee)).To(BeTrue(), "got %v", werr)
		Expect(ee.ExitStatus()).To(Equal(3))
		Expect(out).To(gbytes.Say("got-int"))
	})

	It("pipes 64 MiB of stdin through intact (sha256) and back", func() {
		data := make([]byte, 64<<20)
		_, err := rand.Read(data)
		Expect(err).NotTo(HaveOccurred())
		sum := sha256.Sum256(data)

		cmd := d.sshCmd(clientKey.PrivateFile, nil, "sha256sum")
		cmd.Stdin = bytes.NewReader(data)
		sess := run(cmd)
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).To(HavePrefix(hex.EncodeToString(sum[:])))

		cmd = d.sshCmd(clientKey.PrivateFile, nil, "cat")
		cmd.Stdin = bytes.NewReader(data)
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = GinkgoWriter
		Expect(cmd.Start()).To(Succeed())
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		var werr error
		Eventually(waited, cmdTimeout).Should(Receive(&werr))
		Expect(werr).NotTo(HaveOccurred())
		back := sha256.Sum256(out.Bytes())
		Expect(back).To(Equal(sum))
	})

	It("passes SendEnv variables to the process", func() {
		cmd := d.sshCmd(clientKey.PrivateFile, []string{"-o", "SendEnv=APPSSH_SENT_VAR"}, `printf '%s' "$APPSSH_SENT_VAR"`)
		cmd.Env = append(os.Environ(), "APPSSH_SENT_VAR=sent value 1")
		sess := run(cmd)
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).To(Equal("sent value 1"))
	})

	It("sets PATH, LANG, HOME and USER like diego-sshd", func() {
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, `echo "path=$PATH"; echo "lang=$LANG"; echo "home=$HOME"; echo "user=$USER"; pwd`))
		Expect(sess.ExitCode()).To(Equal(0))
		out := string(sess.Out.Contents())
		Expect(out).To(MatchRegexp(`(?m)^path=.*/usr/bin`))
		Expect(out).To(MatchRegexp(`(?m)^lang=.+`))
		Expect(out).To(ContainSubstring("home=" + d.home + "\n"))
		Expect(out).To(ContainSubstring("user=vcap\n"))
		Expect(out).To(ContainSubstring("\n" + d.home + "\n"))
	})

	It("applies the pty size and window changes (stty size)", func() {
		cmd := d.sshCmd(clientKey.PrivateFile, []string{"-tt"})
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 31, Cols: 97})
		Expect(err).NotTo(HaveOccurred())
		defer tty.Close()
		defer func() { _ = cmd.Process.Kill() }()
		out := gbytes.NewBuffer()
		copied := make(chan struct{})
		go func() { defer close(copied); _, _ = io.Copy(out, tty) }()

		_, err = tty.Write([]byte("stty size; echo TERM=$TERM\n"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(out, cmdTimeout).Should(gbytes.Say(`31 97`))
		Eventually(out, cmdTimeout).Should(gbytes.Say(`TERM=\S+`))

		Expect(pty.Setsize(tty, &pty.Winsize{Rows: 45, Cols: 133})).To(Succeed())
		// The client forwards SIGWINCH asynchronously: ask again until the new size shows.
		Eventually(func() []byte {
			_, _ = tty.Write([]byte("stty size\n"))
			time.Sleep(200 * time.Millisecond)
			return out.Contents()
		}, cmdTimeout, 100*time.Millisecond).Should(ContainSubstring("45 133"))

		_, err = tty.Write([]byte("exit 0\n"))
		Expect(err).NotTo(HaveOccurred())
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		Eventually(waited, cmdTimeout).Should(Receive(BeNil()))
	})
})

var _ = Describe("daemon environment", func() {
	It("inherits the daemon environment only with -inheritDaemonEnv", func() {
		env := []string{"APPSSH_DAEMON_VAR=from-daemon"}
		probe := `printf 'v=%s' "$APPSSH_DAEMON_VAR"`

		off := startKeyed(env)
		sess := run(off.sshCmd(clientKey.PrivateFile, nil, probe))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).To(Equal("v="))

		on := startKeyed(env, "-inheritDaemonEnv")
		sess = run(on.sshCmd(clientKey.PrivateFile, nil, probe))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).To(Equal("v=from-daemon"))

		By("never passing key material on, even when inherited")
		sess = run(on.sshCmd(clientKey.PrivateFile, nil, "env"))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(string(sess.Out.Contents())).NotTo(ContainSubstring("PRIVATE KEY"))
		Expect(string(sess.Out.Contents())).NotTo(ContainSubstring(strings.Fields(clientKey.AuthorizedKey)[1]))
		Expect(string(sess.Out.Contents())).NotTo(ContainSubstring("APP_SSH_SSHD_SECRETS"))
	})

	It("hides key material from /proc/PID/cmdline and /proc/PID/environ", func() {
		d := startKeyed(nil, "-inheritDaemonEnv")
		pid := d.session.Command.Process.Pid
		cmdline, err := os.ReadFile("/proc/" + itoa(pid) + "/cmdline")
		Expect(err).NotTo(HaveOccurred())
		environ, err := os.ReadFile("/proc/" + itoa(pid) + "/environ")
		Expect(err).NotTo(HaveOccurred())
		hostKeyBody := strings.Split(hostKey.PrivatePEM, "\n")[1]
		authBody := strings.Fields(clientKey.AuthorizedKey)[1]
		for _, b := range [][]byte{cmdline, environ} {
			Expect(string(b)).NotTo(ContainSubstring("PRIVATE KEY"))
			Expect(string(b)).NotTo(ContainSubstring(hostKeyBody))
			Expect(string(b)).NotTo(ContainSubstring(authBody))
		}
		Expect(string(cmdline)).To(ContainSubstring("-address"))
		Expect(string(cmdline)).To(ContainSubstring("-inheritDaemonEnv"))

		By("still authenticating with the hidden keys")
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, "true"))
		Expect(sess.ExitCode()).To(Equal(0))
	})
})

var _ = Describe("requests and channels it does not serve", func() {
	It("refuses unknown requests and channel types and malformed payloads, staying usable", func() {
		d := startKeyed(nil)
		c := d.mustGoClient()

		_, _, err := c.OpenChannel("no-such-channel@example.com", nil)
		var oce *ssh.OpenChannelError
		Expect(errors.As(err, &oce)).To(BeTrue(), "got %v", err)
		Expect(oce.Reason).To(Equal(ssh.UnknownChannelType))

		ok, _, err := c.SendRequest("no-such-global@example.com", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		defer s.Close()
		ok, err = s.SendRequest("no-such-request@example.com", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		huge := ssh.Marshal(struct{ Name, Value string }{"BIG", strings.Repeat("x", 100<<10)})
		ok, err = s.SendRequest("env", true, huge)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "a 100 KiB env value is refused")

		ok, err = s.SendRequest("env", true, []byte{0, 0, 0, 9, 'x'})
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "a truncated env payload is refused")

		ok, err = s.SendRequest("pty-req", true, []byte{0xff, 0xff, 0xff, 0xff})
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "a malformed pty-req is refused")

		hugeTerm := ssh.Marshal(struct {
			Term       string
			C, R, W, H uint32
			Modes      string
		}{strings.Repeat("t", 50000), 80, 24, 0, 0, ""})
		ok, err = s.SendRequest("pty-req", true, hugeTerm)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse(), "a huge TERM is refused")

		ok, err = s.SendRequest("env", true, ssh.Marshal(struct{ Name, Value string }{"SMALL_VAR", "ok"}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())

		out, err := s.Output(`printf '%s' "$SMALL_VAR"`)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("ok"))
	})
})

var _ = Describe("connection liveness", func() {
	writeConfig := func(body string) string {
		f, err := os.CreateTemp(GinkgoT().TempDir(), "sshd-*.yml")
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteString(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
		return f.Name()
	}

	It("closes a connection whose client stops answering keepalives and hangs up its processes", func() {
		cfg := writeConfig("keepalive_interval: 200ms\nkeepalive_count_max: 2\nauthorized_keys:\n- " + strings.TrimSpace(clientKey.AuthorizedKey) + "\n")
		d := startDaemon(nil, "-config="+cfg)
		marker := d.home + "/hup-marker"

		conn, err := netDial(d.port)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		sc, chans, _, err := ssh.NewClientConn(conn, "127.0.0.1:"+d.port, &ssh.ClientConfig{
			User: "vcap", Auth: []ssh.AuthMethod{ssh.PublicKeys(clientKey.Signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		// A client that never answers global requests: nil request channel, never replied to.
		c := ssh.NewClient(sc, chans, nil)
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out := gbytes.NewBuffer()
		s.Stdout = out
		Expect(s.Start("trap 'echo hup > " + marker + "; exit 0' HUP; echo ready; for i in $(seq 600); do sleep 0.1; done")).To(Succeed())
		Eventually(out, startTimeout).Should(gbytes.Say("ready"))

		closed := make(chan error, 1)
		go func() { closed <- c.Wait() }()
		Eventually(closed, cmdTimeout).Should(Receive())
		Eventually(func() string {
			b, _ := os.ReadFile(marker)
			return string(b)
		}, cmdTimeout).Should(Equal("hup\n"))
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say("keepalive-timeout"))
	})

	It("keeps a connection whose client answers keepalives", func() {
		cfg := writeConfig("keepalive_interval: 250ms\nkeepalive_count_max: 6\nauthorized_keys:\n- " + strings.TrimSpace(clientKey.AuthorizedKey) + "\n")
		d := startDaemon(nil, "-config="+cfg)
		sess := run(d.sshCmd(clientKey.PrivateFile, nil, "sleep 2.5; echo still-here"))
		Expect(sess.ExitCode()).To(Equal(0))
		Expect(sess.Out).To(gbytes.Say("still-here"))
		Expect(d.session.Out).NotTo(gbytes.Say("keepalive-timeout"))
	})

	// idle_timeout counts every message but the sshd's own keepalive probes and their replies:
	// a silent shell is closed even though its client answers the probes, while the client's
	// own keepalives (ServerAliveInterval) keep it open.
	It("keeps an idle connection whose client sends keepalives, and closes a silent one", func() {
		cfg := writeConfig("idle_timeout: 1500ms\nkeepalive_interval: 200ms\nkeepalive_count_max: 3\nauthorized_keys:\n- " + strings.TrimSpace(clientKey.AuthorizedKey) + "\n")
		d := startDaemon(nil, "-config="+cfg)
		kept := run(d.sshCmd(clientKey.PrivateFile, []string{"-o", "ServerAliveInterval=1"}, "sleep 4; echo still-here"))
		Expect(kept.ExitCode()).To(Equal(0))
		Expect(kept.Out).To(gbytes.Say("still-here"))

		silent := run(d.sshCmd(clientKey.PrivateFile, []string{"-o", "ServerAliveInterval=0"}, "sleep 4; echo still-here"))
		Expect(silent.ExitCode()).To(Equal(255))
		Expect(silent.Out).NotTo(gbytes.Say("still-here"))
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say("idle-timeout"))
	})

	It("closes idle connections after idle_timeout", func() {
		cfg := writeConfig("idle_timeout: 300ms\nkeepalive_interval: 0s\nauthorized_keys:\n- " + strings.TrimSpace(clientKey.AuthorizedKey) + "\n")
		d := startDaemon(nil, "-config="+cfg)
		c, err := d.goClient(ssh.PublicKeys(clientKey.Signer))
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		closed := make(chan error, 1)
		go func() { closed <- c.Wait() }()
		Eventually(closed, cmdTimeout).Should(Receive())
		Eventually(d.session.Out, cmdTimeout).Should(gbytes.Say("idle-timeout"))
	})
})

var _ = exec.Command
var _ = gexec.Exit
