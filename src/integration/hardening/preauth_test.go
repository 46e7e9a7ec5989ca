package hardening_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("pre-authentication defences", func() {
	var e *env
	BeforeEach(func() { e = newEnv() })

	It("keeps serving real logins while 1,000 stalled connections are held, and closes those at the login grace time", func() {
		const stalled = 1000
		const grace = 6 * time.Second
		e.startProxy(`handshake_timeout: 6s
preauth_idle_timeout: 0s
max_startups: "1100:30:1200"
per_source_penalty_exempt_list: [127.0.0.2/32]
`)
		// A warm-up login and scrape first, so the proxy's pooled connections to UAA, CC, the BBS
		// (and the scrape's keep-alive) are part of the baseline.
		Expect(e.ssh("127.0.0.2", e.code(), "true").code).To(Equal(0))
		e.scrape()
		fdsBefore := e.openFDs()
		type held struct {
			c      net.Conn
			opened time.Time
		}
		conns := make([]held, 0, stalled)
		DeferCleanup(func() {
			for _, h := range conns {
				h.c.Close()
			}
		})
		for range stalled {
			conns = append(conns, held{c: e.dialFrom("127.0.0.1"), opened: time.Now()})
		}
		// Every stalled connection stays open: each gets the server's banner and nothing else.
		r := e.ssh("127.0.0.2", e.code(), "echo still-serving")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("still-serving\n"))

		// Each stalled connection is closed by the proxy (EOF after the banner), not earlier
		// than the grace time after it was opened.
		var wg sync.WaitGroup
		lifetimes := make([]time.Duration, len(conns))
		errs := make([]error, len(conns))
		for i, h := range conns {
			wg.Go(func() {
				_ = h.c.SetReadDeadline(time.Now().Add(grace + 60*time.Second))
				b, err := io.ReadAll(h.c)
				lifetimes[i] = time.Since(h.opened)
				if err == nil && !strings.HasPrefix(string(b), "SSH-2.0-") {
					err = io.ErrUnexpectedEOF
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range conns {
			Expect(errs[i]).NotTo(HaveOccurred(), "connection %d", i)
			Expect(lifetimes[i]).To(BeNumerically(">=", grace-500*time.Millisecond), "connection %d closed early", i)
		}
		Eventually(func() float64 {
			return metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "login_grace_time")
		}, 20*time.Second, 200*time.Millisecond).Should(BeNumerically("==", stalled))
		Expect(metric(e.scrape(), "ssh_proxy_connections_current")).To(BeNumerically("==", 0))
		// Every descriptor is given back (a little slack for the metrics scrape's keep-alive).
		Eventually(e.openFDs, 20*time.Second, 200*time.Millisecond).Should(BeNumerically("<=", fdsBefore+2))
	})

	It("drops unauthenticated connections beyond max_startups and admits again once they are gone", func() {
		e.startProxy("max_startups: \"3\"\nper_source_penalties: {enabled: false}\n")
		var held []net.Conn
		for range 3 {
			c := e.dialFrom("127.0.0.1")
			held = append(held, c)
			// Wait for the banner: the connection has been counted.
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 8)
			_, err := io.ReadFull(c, buf)
			Expect(err).NotTo(HaveOccurred())
		}
		extra := e.dialFrom("127.0.0.1")
		_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(extra)
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(BeEmpty(), "a dropped connection gets no banner")
		extra.Close()
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "max_startups")).To(Equal(1.0))
		for _, c := range held {
			c.Close()
		}
		Eventually(func() int {
			return e.ssh("127.0.0.1", e.code(), "true").code
		}, 20*time.Second, 200*time.Millisecond).Should(Equal(0))
	})

	It("penalises a source after repeated failed logins, but never an exempt source", func() {
		e.startProxy(`per_source_penalties: {enabled: true, authfail: 5s, noauth: 0s, grace_exceeded: 10s, min: 8s, max: 60s}
per_source_penalty_exempt_list: [127.0.0.3/32]
`)
		for range 2 {
			r := e.ssh("127.0.0.2", "not-a-valid-code")
			Expect(r.code).NotTo(Equal(0))
			Expect(r.stderr).To(ContainSubstring("ssh-proxy: invalid or expired one-time code"))
		}
		// The proxy records a failure once it sees the client go.
		Eventually(func() int {
			n := 0
			for _, l := range e.logLines("ssh-proxy.handshake-failed") {
				if strings.HasPrefix(l["remote_addr"].(string), "127.0.0.2:") {
					n++
				}
			}
			return n
		}, 10*time.Second, 50*time.Millisecond).Should(Equal(2))
		// ~10s accumulated (over min, 8s): the source is refused before any SSH exchange,
		// even with a good code.
		r := e.ssh("127.0.0.2", e.code(), "true")
		Expect(r.code).To(Equal(255))
		Expect(r.stderr).NotTo(ContainSubstring("ssh-proxy: invalid"))
		Expect(e.logLines("ssh-proxy.connection-refused")).To(ContainElement(And(
			HaveKeyWithValue("reason", "penalty"), HaveKeyWithValue("remote_addr", HavePrefix("127.0.0.2:")))))

		// Another source is unaffected; the exempt source may fail as often as it likes.
		for range 4 {
			r := e.ssh("127.0.0.3", "not-a-valid-code")
			Expect(r.stderr).To(ContainSubstring("ssh-proxy: invalid or expired one-time code"))
		}
		r = e.ssh("127.0.0.3", e.code(), "echo exempt")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("exempt\n"))
		r = e.ssh("127.0.0.4", e.code(), "echo other")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "penalty")).To(Equal(1.0))
	})

	It("stops a connection after max_auth_tries failures", func() {
		e.startProxy("max_auth_tries: 2\n")
		c := e.dialFrom("127.0.0.5")
		defer c.Close()
		// Password attempts over one connection with a Go client: the third is never asked.
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		tries := 0
		_, err := sshClientWithRetries(c, e.user(), func() string { tries++; return "bad-code-" + string(rune('a'+tries)) }, 5)
		Expect(err).To(HaveOccurred())
		Expect(tries).To(Equal(2))
		Eventually(func() float64 {
			return metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "max_auth_tries")
		}, 10*time.Second).Should(Equal(1.0))
	})
})
