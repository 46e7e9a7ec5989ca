package hardening_test

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

var _ = Describe("session idle timeout (diego-ssh semantics)", func() {
	It("keeps an OpenSSH -N -L tunnel with ServerAliveInterval=1 open past a 2s idle timeout, and closes a silent one at ~2s", func() {
		e := newEnv()
		e.startProxy("idle_connection_timeout: 2s\n")
		tunnel := func(extra ...string) *gexec.Session {
			args := append(e.sshArgs("127.0.0.1"), extra...)
			args = append(args, "-N", "-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", procs.FreePort(), e.rig.SSHDPort))
			s, err := gexec.Start(proxyrig.ClientCmd(context.Background(), e.code(), "ssh", args...), GinkgoWriter, GinkgoWriter)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { s.Kill().Wait(10 * time.Second) })
			return s
		}
		alive := tunnel("-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=10")
		Eventually(func() int { return len(e.logLines("ssh-proxy.session-started")) }, 20*time.Second).Should(Equal(1))
		silent := tunnel()
		Eventually(func() int { return len(e.logLines("ssh-proxy.session-started")) }, 20*time.Second).Should(Equal(2))
		started := time.Now()

		Eventually(silent, 10*time.Second).Should(gexec.Exit())
		Expect(time.Since(started)).To(BeNumerically("~", 2*time.Second, 1500*time.Millisecond))
		Consistently(alive, 6*time.Second-time.Since(started)).ShouldNot(gexec.Exit())
		ends := e.logLines("ssh-proxy.session-ended")
		Expect(ends).To(HaveLen(1))
		Expect(ends[0]).To(HaveKeyWithValue("end_reason", "idle timeout"))
	})
})

var _ = Describe("maximum connection duration", func() {
	It("closes a long session at the limit and tells the user why", func() {
		e := newEnv()
		e.startProxy("max_connection_duration: 3s\n")
		s, err := gexec.Start(e.sshCmd("127.0.0.1", e.code(), "echo started; sleep 60; echo never"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { s.Kill().Wait(10 * time.Second) })
		Eventually(s.Out, 20*time.Second).Should(gbytes.Say("started"))
		began := time.Now()
		Eventually(s, 20*time.Second).Should(gexec.Exit())
		Expect(time.Since(began)).To(BeNumerically("<", 4*time.Second))
		Expect(s.ExitCode()).NotTo(Equal(0))
		Expect(string(s.Err.Contents())).To(ContainSubstring("ssh-proxy: closing the connection: it has reached the maximum connection duration"))
		Expect(string(s.Out.Contents())).NotTo(ContainSubstring("never"))
		Eventually(e.rig.AuditEvents, 10*time.Second).Should(ContainElement(And(HaveKeyWithValue("event", "session-end"),
			HaveKeyWithValue("end_reason", "max connection duration"))))
	})
})

var _ = Describe("a person typing", func() {
	It("logs in with the password entered 60s after the prompt, with the default limits", func() {
		e := newEnv()
		e.startProxy("")
		c := e.dialFrom("127.0.0.1")
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Minute))
		var prompted time.Time
		sc, chans, reqs, err := ssh.NewClientConn(c, "127.0.0.1", &ssh.ClientConfig{
			User: e.user(), HostKeyCallback: ssh.InsecureIgnoreHostKey(),
			Auth: []ssh.AuthMethod{ssh.PasswordCallback(func() (string, error) {
				prompted = time.Now()
				time.Sleep(60 * time.Second) // looking for `cf ssh-code`, then pasting it
				return e.code(), nil
			})},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(time.Since(prompted)).To(BeNumerically(">=", 60*time.Second))
		client := ssh.NewClient(sc, chans, reqs)
		defer client.Close()
		s, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := s.Output("echo patient")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("patient\n"))
	})
})

var _ = Describe("per-source penalties behind a PROXY protocol load balancer", func() {
	It("penalises the client address a header announced, not the load balancer, and not other clients", func() {
		e := newEnv()
		e.startProxy("proxy_protocol: {enabled: true, allowed_cidrs: [127.0.0.6/32]}\nper_source_penalty_exempt_list: []\n")
		via := func(client, password string) (string, error) {
			c := e.dialFrom("127.0.0.6")
			defer c.Close()
			_, err := io.WriteString(c, "PROXY TCP4 "+client+" 127.0.0.1 40000 2222\r\n")
			Expect(err).NotTo(HaveOccurred())
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			cl, err := sshClientWithRetries(c, e.user(), func() string { return password }, 1)
			if err != nil {
				return "", err
			}
			defer cl.Close()
			s, err := cl.NewSession()
			if err != nil {
				return "", err
			}
			defer s.Close()
			out, err := s.Output("echo in")
			return string(out), err
		}
		const a, b = "203.0.113.10", "203.0.113.11"
		// Defaults: 5 s per refused code, refused while at least 15 s remain: four bad codes in
		// quick succession (three leave a little under 15 s).
		for i := range 4 {
			_, err := via(a, "wrong-"+strconv.Itoa(i))
			Expect(err).To(HaveOccurred())
		}
		Eventually(func() error { _, err := via(a, e.code()); return err }, 10*time.Second).Should(HaveOccurred())
		Eventually(func() []map[string]any { return e.logLines("ssh-proxy.connection-refused") }, 10*time.Second).Should(
			ContainElement(And(HaveKeyWithValue("reason", "penalty"), HaveKeyWithValue("remote_addr", a+":40000"))))
		out, err := via(b, e.code())
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("in\n"))

		// Direct connections (no header) from elsewhere: their addresses are not known to be
		// the clients' own, so they are never penalised.
		for i := range 4 {
			r := e.ssh("127.0.0.9", "wrong-direct-"+strconv.Itoa(i))
			Expect(r.stderr).To(ContainSubstring("ssh-proxy: invalid or expired one-time code"))
		}
		r := e.ssh("127.0.0.9", e.code(), "echo direct")
		Expect(r.code).To(Equal(0), r.stderr)
	})
})
