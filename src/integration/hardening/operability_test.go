package hardening_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	pp "github.com/pires/go-proxyproto"

	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

var _ = Describe("PROXY protocol", func() {
	var e *env
	BeforeEach(func() {
		e = newEnv()
		e.startProxy("proxy_protocol: {enabled: true, allowed_cidrs: [127.0.0.6/32]}\n")
	})

	sessionFrom := func(addr string) map[string]any {
		var found map[string]any
		Eventually(func() map[string]any {
			for _, l := range e.logLines("ssh-proxy.session-started") {
				if l["remote_addr"] == addr {
					found = l
				}
			}
			return found
		}, 10*time.Second, 50*time.Millisecond).ShouldNot(BeNil())
		return found
	}

	It("takes the client address from a v1 header sent by an allowed load balancer", func() {
		c := e.dialFrom("127.0.0.6")
		defer c.Close()
		_, err := io.WriteString(c, "PROXY TCP4 203.0.113.77 127.0.0.1 45678 2222\r\n")
		Expect(err).NotTo(HaveOccurred())
		out, err := e.goLogin(c, "echo via-v1")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("via-v1\n"))
		sessionFrom("203.0.113.77:45678")
		Eventually(e.rig.AuditEvents, 10*time.Second).Should(ContainElement(And(
			HaveKeyWithValue("event", "session-end"), HaveKeyWithValue("client_addr", "203.0.113.77:45678"))))
	})

	It("takes the client address from a v2 header (IPv6 client)", func() {
		c := e.dialFrom("127.0.0.6")
		defer c.Close()
		h := pp.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("2001:db8::77"), Port: 40001},
			&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 2222})
		_, err := h.WriteTo(c)
		Expect(err).NotTo(HaveOccurred())
		out, err := e.goLogin(c, "echo via-v2")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("via-v2\n"))
		sessionFrom("[2001:db8::77]:40001")
	})

	It("refuses a header from any other source, and an allowed source without one", func() {
		for _, header := range []func(io.Writer) error{
			func(w io.Writer) error {
				_, err := io.WriteString(w, "PROXY TCP4 203.0.113.88 127.0.0.1 45678 2222\r\n")
				return err
			},
			func(w io.Writer) error {
				_, err := pp.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("203.0.113.88"), Port: 1},
					&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 2222}).WriteTo(w)
				return err
			},
		} {
			c := e.dialFrom("127.0.0.7")
			Expect(header(c)).To(Succeed())
			_, err := e.goLogin(c, "true")
			Expect(err).To(HaveOccurred())
			c.Close()
		}
		// The allowed load balancer must send a header.
		c := e.dialFrom("127.0.0.6")
		_, err := e.goLogin(c, "true")
		Expect(err).To(HaveOccurred())
		c.Close()
		Eventually(func() float64 {
			return metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "proxy_header")
		}, 10*time.Second).Should(Equal(3.0))
		Expect(e.proxyLog()).NotTo(ContainSubstring("203.0.113.88"))
		Expect(e.logLines("ssh-proxy.session-started")).To(BeEmpty())

		// Direct clients elsewhere (no header) are still served, under their own address.
		r := e.ssh("127.0.0.8", e.code(), "echo direct")
		Expect(r.code).To(Equal(0), r.stderr)
		sessionFrom(e.logLines("ssh-proxy.session-started")[0]["remote_addr"].(string))
		Expect(e.logLines("ssh-proxy.session-started")[0]["remote_addr"]).To(HavePrefix("127.0.0.8:"))
	})
})

var _ = Describe("graceful drain", func() {
	It("lets a session finish inside the drain window, closes one still open at the deadline with a message, and answers 503 meanwhile", func() {
		e := newEnv()
		e.startProxy("drain_timeout: 5s\n")
		short, err := gexec.Start(e.sshCmd("127.0.0.1", e.code(), "sleep 2; echo finished-normally"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { short.Kill().Wait(10 * time.Second) })
		long, err := gexec.Start(e.sshCmd("127.0.0.1", e.code(), "echo long-started; sleep 60; echo never"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { long.Kill().Wait(10 * time.Second) })
		Eventually(long.Out, 20*time.Second).Should(gbytes.Say("long-started"))
		Eventually(func() int { return len(e.logLines("ssh-proxy.session-started")) }, 20*time.Second).Should(Equal(2))

		Expect(e.proxy.Command.Process.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(e.healthStatus, 5*time.Second, 20*time.Millisecond).Should(Equal(http.StatusServiceUnavailable))
		// No new connections.
		Eventually(func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.proxyPort), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}, 5*time.Second).Should(HaveOccurred())
		Expect(metric(e.scrape(), "ssh_proxy_draining")).To(Equal(1.0))

		Eventually(short, 30*time.Second).Should(gexec.Exit(0))
		Expect(string(short.Out.Contents())).To(Equal("finished-normally\n"))
		Consistently(long, time.Second).ShouldNot(gexec.Exit())

		Eventually(long, 30*time.Second).Should(gexec.Exit())
		Expect(long.ExitCode()).NotTo(Equal(0))
		Expect(string(long.Err.Contents())).To(ContainSubstring("ssh-proxy: this proxy is shutting down"))
		Expect(string(long.Out.Contents())).NotTo(ContainSubstring("never"))
		Eventually(e.proxy, 20*time.Second).Should(gexec.Exit(0))
		Expect(e.logLines("ssh-proxy.drain-timeout")).To(ConsistOf(HaveKeyWithValue("sessions_closed", 1.0)))
		Expect(e.rig.AuditEvents()).To(ContainElement(And(HaveKeyWithValue("event", "session-end"),
			HaveKeyWithValue("end_reason", "drain timeout"))))
	})
})

var _ = Describe("failures around the proxy", func() {
	var e *env
	BeforeEach(func() {
		e = newEnv()
		e.startProxy("handshake_timeout: 25s\npreauth_idle_timeout: 20s\n")
	})

	refusedWith := func(r result, reason string) {
		GinkgoHelper()
		Expect(r.code).NotTo(Equal(0))
		Expect(r.stderr).To(ContainSubstring("ssh-proxy: " + reason))
	}
	// A permitted user whose instance cannot be reached sees the reason on the channel open.
	channelRefusedWith := func(r result, reason string) {
		GinkgoHelper()
		Expect(r.code).NotTo(Equal(0))
		Expect(r.stderr).To(ContainSubstring("open failed: connect failed: " + reason))
	}

	// communication_timeout is 3s and the grace time 25s: a refusal with a reason can only
	// come from the communication timeout (at the grace time the client gets no reason).
	It("refuses with a reason when UAA hangs", func() {
		e.uaa.SetMode(uaastub.Hang)
		refusedWith(e.ssh("127.0.0.1", e.code(), "true"), "UAA unavailable")
	})

	It("refuses with a reason when the Cloud Controller hangs", func() {
		e.cc.SetMode(ccstub.Hang)
		refusedWith(e.ssh("127.0.0.1", e.code(), "true"), "Cloud Controller unavailable")
	})

	It("refuses with a reason when the BBS hangs", func() {
		e.bbs.SetMode(bbsstub.Hang)
		channelRefusedWith(e.ssh("127.0.0.1", e.code(), "true"), "BBS unavailable")
	})

	It("ends the client's session when the sshd is killed mid-session, and stays healthy", func() {
		s, err := gexec.Start(e.sshCmd("127.0.0.1", e.code(), "echo up; sleep 60"), GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { s.Kill().Wait(10 * time.Second) })
		Eventually(s.Out, 20*time.Second).Should(gbytes.Say("up"))
		e.sshd.Kill()
		Eventually(s, 20*time.Second).Should(gexec.Exit())
		Expect(s.ExitCode()).NotTo(Equal(0))
		Expect(e.healthStatus()).To(Equal(http.StatusOK))
		Eventually(func() int { return len(e.logLines("ssh-proxy.session-ended")) }, 10*time.Second).Should(Equal(1))
		channelRefusedWith(e.ssh("127.0.0.1", e.code(), "true"), "cannot reach the instance's sshd")
		Expect(e.proxy).NotTo(gexec.Exit())
		Expect(metric(e.scrape(), "ssh_proxy_sessions_current")).To(Equal(0.0))
	})
})

var _ = Describe("metrics and audit", func() {
	It("count a scripted mix of sessions exactly", func() {
		e := newEnv()
		e.startProxy("per_source_penalties: {enabled: false}\n")
		for i := range 3 {
			r := e.ssh("127.0.0.1", e.code(), fmt.Sprintf("echo run-%d", i))
			Expect(r.code).To(Equal(0), r.stderr)
		}
		for range 2 {
			r := e.ssh("127.0.0.1", "wrong-code")
			Expect(r.code).NotTo(Equal(0))
		}
		// stdin to the instance: 1000 bytes up, 2000 bytes down.
		r := e.sshWithInput("127.0.0.1", strings.Repeat("u", 1000), "cat >/dev/null; head -c 2000 /dev/zero | tr '\\0' d")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal(strings.Repeat("d", 2000)))
		// A diego login.
		r = e.sshDiego("127.0.0.1", "echo as-diego")
		Expect(r.code).To(Equal(0), r.stderr)

		Eventually(func() int { return len(e.logLines("ssh-proxy.session-ended")) }, 10*time.Second).Should(Equal(5))
		f := e.scrape()
		Expect(metric(f, "ssh_proxy_connections_total")).To(Equal(7.0))
		Expect(metric(f, "ssh_proxy_connections_current")).To(Equal(0.0))
		Expect(metric(f, "ssh_proxy_sessions_current")).To(Equal(0.0))
		Expect(metric(f, "ssh_proxy_auth_attempts_total", "method", "password", "result", "success")).To(Equal(5.0))
		Expect(metric(f, "ssh_proxy_auth_attempts_total", "method", "password", "result", "failure")).To(Equal(2.0))
		Expect(metric(f, "ssh_proxy_refusals_total", "reason", "authentication")).To(Equal(2.0))
		Expect(metric(f, "ssh_proxy_backend_dial_duration_seconds", "result", "success")).To(Equal(5.0))
		Expect(metric(f, "ssh_proxy_channels_total", "channel_type", "session")).To(Equal(5.0))
		Expect(metric(f, "ssh_proxy_draining")).To(Equal(0.0))
		Expect(metric(f, "ssh_proxy_bytes_relayed_total", "direction", "to_backend")).To(BeNumerically(">=", 1000))
		Expect(metric(f, "ssh_proxy_bytes_relayed_total", "direction", "to_client")).To(BeNumerically(">=", 2000+3*len("run-0\n")))
		for _, fam := range f {
			for _, m := range fam.GetMetric() {
				for _, l := range m.GetLabel() {
					Expect(l.GetValue()).NotTo(ContainSubstring("127.0.0"), "per-client label on %s", fam.GetName())
					Expect(l.GetValue()).NotTo(ContainSubstring("developer"), "per-user label on %s", fam.GetName())
				}
			}
		}

		var ends []map[string]any
		for _, l := range e.rig.AuditEvents() {
			if l["event"] == "session-end" {
				ends = append(ends, l)
			}
		}
		Expect(ends).To(HaveLen(5))
		Expect(ends[0]).To(HaveKeyWithValue("user", "developer@example.com"))
		Expect(ends[0]).To(HaveKeyWithValue("app_guid", appGUID))
		Expect(ends[0]).To(HaveKeyWithValue("process_guid", processGUID))
		Expect(ends[0]).To(HaveKeyWithValue("exec_commands", []any{"echo run-0"}))
		Expect(ends[3]).To(HaveKeyWithValue("bytes_to_backend", 1000.0))
		Expect(ends[3]).To(HaveKeyWithValue("bytes_to_client", 2000.0))
		Expect(ends[4]).To(HaveKeyWithValue("user", "diego"))
		Expect(ends[4]).To(HaveKeyWithValue("channel_types", HaveKeyWithValue("session", 1.0)))
	})
})

func (e *env) sshWithInput(src, input string, args ...string) result {
	cmd := e.sshCmd(src, e.code(), args...)
	cmd.Stdin = strings.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	Expect(cmd.Start()).To(Succeed())
	go func() { done <- cmd.Wait() }()
	var err error
	Eventually(done, 60*time.Second).Should(Receive(&err))
	code := 0
	if err != nil {
		code = cmd.ProcessState.ExitCode()
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func (e *env) sshDiego(src string, args ...string) result {
	e.userOverride = "diego:" + processGUID + "/0"
	defer func() { e.userOverride = "" }()
	return e.ssh(src, rememberSecret("diego-shared-secret-hardening"), args...)
}
