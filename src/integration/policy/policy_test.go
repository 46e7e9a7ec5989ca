package policy_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
)

// socksConnect asks the SOCKS5 server on 127.0.0.1:port (ssh -D) for 127.0.0.1:target and
// returns what the target sent, or an error when the proxy refused or closed.
func socksConnect(port, target int) (string, error) {
	c, err := net.DialTimeout("tcp", procs.Addr(port), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return "", err
	}
	hello := make([]byte, 2)
	if _, err := io.ReadFull(c, hello); err != nil {
		return "", err
	}
	req := []byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 0}
	binary.BigEndian.PutUint16(req[8:], uint16(target))
	if _, err := c.Write(req); err != nil {
		return "", err
	}
	reply := make([]byte, 10)
	if _, err := io.ReadFull(c, reply); err != nil {
		return "", err
	}
	if reply[1] != 0 {
		return "", io.ErrUnexpectedEOF
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

var _ = Describe("operator policy", func() {
	Describe("the defaults (no policy block)", func() {
		It("relays -L anywhere and shells, and accepts only the default env names", func() {
			e := newEnv("")
			echo := echoServer()
			lport := procs.FreePort()
			_, stop := e.sshStart([]string{"-N", "-o", "ExitOnForwardFailure=yes", "-L", strconv.Itoa(lport) + ":127.0.0.1:" + strconv.Itoa(echo)})
			Eventually(func() (string, error) { return readVia(lport) }, 30*time.Second, 100*time.Millisecond).
				Should(Equal("hello from " + strconv.Itoa(echo) + "\n"))
			stop()

			r := e.ssh(nil, []string{"-o", "SetEnv=LANG=C.UTF-8 LD_PRELOAD=" + envSecret}, `echo "lang=$LANG preload=$LD_PRELOAD"`)
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("lang=C.UTF-8 preload=\n"))
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: environment variable LD_PRELOAD is not accepted by the operator's policy"))
			Expect(e.denials("env")).To(Equal(1.0))

			// agent forwarding is refused by the proxy itself; the session goes on
			client := e.goClient()
			defer client.Close()
			s, err := client.NewSession()
			Expect(err).NotTo(HaveOccurred())
			ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeFalse())
			out, err := s.Output("echo agent")
			Expect(err).NotTo(HaveOccurred())
			Expect(string(out)).To(Equal("agent\n"))
			Expect(e.denials("agent-forwarding")).To(Equal(1.0))
		})
	})

	Describe("forwarding switches", func() {
		It("allows -L and -D only to permit_open and refuses -R, with the reason", func() {
			allowed, other := echoServer(), echoServer()
			e := newEnv("policy:\n  remote_forwarding: false\n  permit_open: [\"127.0.0.1:" + strconv.Itoa(allowed) + "\"]\n")

			lAllowed, lOther := procs.FreePort(), procs.FreePort()
			_, stop := e.sshStart([]string{"-N", "-o", "ExitOnForwardFailure=yes",
				"-L", strconv.Itoa(lAllowed) + ":127.0.0.1:" + strconv.Itoa(allowed),
				"-L", strconv.Itoa(lOther) + ":127.0.0.1:" + strconv.Itoa(other)})
			Eventually(func() (string, error) { return readVia(lAllowed) }, 30*time.Second, 100*time.Millisecond).
				Should(Equal("hello from " + strconv.Itoa(allowed) + "\n"))
			Expect(readVia(lOther)).To(Equal(""))
			stderr := stop()
			Expect(stderr).To(ContainSubstring("open failed: administratively prohibited: port forwarding to 127.0.0.1:" +
				strconv.Itoa(other) + " is not permitted by the operator's policy"))
			Expect(e.denials("local-forward")).To(Equal(1.0))

			dport := procs.FreePort()
			_, stopD := e.sshStart([]string{"-N", "-o", "ExitOnForwardFailure=yes", "-D", strconv.Itoa(dport)})
			Eventually(func() (string, error) { return socksConnect(dport, allowed) }, 30*time.Second, 100*time.Millisecond).
				Should(Equal("hello from " + strconv.Itoa(allowed) + "\n"))
			_, err := socksConnect(dport, other)
			Expect(err).To(HaveOccurred())
			Expect(stopD()).To(ContainSubstring("port forwarding to 127.0.0.1:" + strconv.Itoa(other) + " is not permitted"))
			Expect(e.denials("local-forward")).To(Equal(2.0))

			r := e.ssh(nil, []string{"-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:" + strconv.Itoa(allowed)}, "echo no")
			Expect(r.Code).To(Equal(255))
			Expect(r.Stderr).To(ContainSubstring("remote port forwarding failed"))
			Expect(r.Stdout).To(BeEmpty())
			Expect(e.denials("remote-forward")).To(Equal(1.0))
			refused := e.eventsOf("request-refused")
			Expect(refused).To(HaveLen(1))
			Expect(refused[0]["denied"]).To(Equal(map[string]any{"kind": "remote-forward",
				"reason": "remote port forwarding (-R) is disabled by the operator's policy"}))
		})

		It("relays -R when allowed and audits the listen address", func() {
			e := newEnv("")
			r := e.ssh(nil, []string{"-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:0:127.0.0.1:9"}, "echo yes")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("yes\n"))
			granted := e.eventsOf("remote-forward")
			Expect(granted).To(HaveLen(1))
			Expect(granted[0]["listen_address"]).To(Equal("127.0.0.1:0"))
		})
	})

	Describe("programs", func() {
		It("refuses sftp while ssh -t works, and lets sftp through when allowed", func() {
			e := newEnv("policy:\n  sftp: false\n")
			r := e.sftp("ls /\n")
			Expect(r.Code).NotTo(Equal(0))
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: sftp is disabled by the operator's policy"))
			Expect(e.denials("sftp")).To(Equal(1.0))
			r = e.ssh(strings.NewReader(""), []string{"-tt"}, "echo terminal-ok")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(ContainSubstring("terminal-ok"))

			open := newEnv("")
			r = open.sftp("ls /\n")
			Expect(r.Code).To(Equal(0), r.Stderr)
		})

		It("refuses shells, commands and terminals each with the reason and exit status 126", func() {
			e := newEnv("policy:\n  shell: false\n  pty: false\n")
			r := e.ssh(strings.NewReader("echo hi\nexit\n"), []string{"-T"})
			Expect(r.Code).To(Equal(126))
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: interactive shells are disabled by the operator's policy"))
			r = e.ssh(strings.NewReader(""), []string{"-tt"}, "echo x")
			Expect(r.Code).To(Equal(126))
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: terminals (pty) are disabled by the operator's policy"))
			r = e.ssh(nil, nil, "echo command-ok")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("command-ok\n"))

			noExec := newEnv("policy:\n  exec: false\n")
			r = noExec.ssh(nil, nil, "echo x")
			Expect(r.Code).To(Equal(126))
			Expect(r.Stdout).To(BeEmpty())
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: running commands is disabled by the operator's policy"))
			Expect(noExec.denials("exec")).To(Equal(1.0))
		})

		It("accepts the env names of accept_env and no others", func() {
			e := newEnv("policy:\n  accept_env: [\"APP_*\"]\n")
			r := e.ssh(nil, []string{"-o", "SetEnv=APP_MODE=debug SECRET_TOKEN=" + envSecret}, `echo "mode=$APP_MODE token=$SECRET_TOKEN"`)
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("mode=debug token=\n"))
			Expect(r.Stderr).To(ContainSubstring("environment variable SECRET_TOKEN is not accepted"))
			chans := e.waitChannels(1)
			Expect(chans[0]["env_names"]).To(Equal([]any{"APP_MODE"}))

			any := newEnv("policy:\n  accept_env: [\"*\"]\n")
			r = any.ssh(nil, []string{"-o", "SetEnv=LD_LIBRARY_PATH=/nowhere"}, `echo "$LD_LIBRARY_PATH"`)
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("/nowhere\n"))
		})
	})

	Describe("caps", func() {
		It("refuses a second session of the same user over max_sessions_per_user and frees it when the first ends", func() {
			e := newEnv("policy:\n  max_sessions_per_user: 1\n")
			cmd, stop := e.sshStart(nil, "sleep 60")
			Eventually(func() float64 { return e.rig.Metric("ssh_proxy_sessions_current") }, 30*time.Second, 100*time.Millisecond).Should(Equal(1.0))
			r := e.ssh(nil, nil, "echo second")
			Expect(r.Code).To(Equal(255))
			Expect(r.Stderr).To(ContainSubstring("you already have 1 open sessions through this ssh-proxy (at most 1 per user)"))
			Expect(e.denials("max-sessions-per-user")).To(Equal(1.0))
			stop()
			Expect(cmd.ProcessState).NotTo(BeNil())
			Eventually(func() float64 { return e.rig.Metric("ssh_proxy_sessions_current") }, 30*time.Second, 100*time.Millisecond).Should(Equal(0.0))
			r = e.ssh(nil, nil, "echo third")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("third\n"))
		})

		It("refuses the session over max_sessions_per_connection with a resource shortage", func() {
			e := newEnv("policy:\n  max_sessions_per_connection: 2\n")
			client := e.goClient()
			defer client.Close()
			s1, err := client.NewSession()
			Expect(err).NotTo(HaveOccurred())
			s2, err := client.NewSession()
			Expect(err).NotTo(HaveOccurred())
			_, err = client.NewSession()
			var oce *ssh.OpenChannelError
			Expect(errors.As(err, &oce)).To(BeTrue(), "%v", err)
			Expect(oce.Reason).To(Equal(ssh.ResourceShortage))
			Expect(oce.Message).To(Equal("too many open sessions on this connection (at most 2)"))
			s1.Close()
			Eventually(func() error {
				s, err := client.NewSession()
				if err == nil {
					s.Close()
				}
				return err
			}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
			s2.Close()
			Expect(e.denials("max-sessions-per-connection")).To(BeNumerically(">=", 1))
		})

		It("closes a session at max_session_duration with a notice, and leaves it alone without", func() {
			e := newEnv("policy:\n  max_session_duration: 2s\n")
			start := time.Now()
			r := e.ssh(nil, nil, "sleep 30; echo not-reached")
			Expect(time.Since(start)).To(BeNumerically("<", 25*time.Second))
			Expect(r.Code).To(Equal(126))
			Expect(r.Stdout).To(BeEmpty())
			Expect(r.Stderr).To(ContainSubstring("ssh-proxy: session closed: it reached the maximum session duration of 2s"))
			Expect(e.denials("max-session-duration")).To(Equal(1.0))
			chans := e.waitChannels(1)
			Expect(chans[0]["end_reason"]).To(Equal("max-session-duration"))

			free := newEnv("")
			r = free.ssh(nil, nil, "sleep 3; echo reached")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal("reached\n"))
		})
	})
})
