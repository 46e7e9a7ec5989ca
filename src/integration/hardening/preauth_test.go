package hardening_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

var _ = Describe("pre-authentication defences", func() {
	var e *env
	BeforeEach(func() { e = newEnv() })

	It("lets 20 real logins from one address past 1,000 idle or dribbling connections from that same address, each within 2s, and gives every descriptor back", func() {
		const flood = 1000
		const grace = 15 * time.Second
		// Default pre-auth limits, except a shorter grace time so the flood's end is observed
		// within the spec; nothing exempt, and penalties live on 127.0.0.1.
		e.startProxy(`handshake_timeout: 15s
per_source_penalty_exempt_list: []
client_addresses_preserved: true
`)
		// A warm-up login and scrape first, so the proxy's pooled connections to UAA, CC, the BBS
		// (and the scrape's keep-alive) are part of the baseline.
		Expect(e.ssh("127.0.0.1", e.code(), "true").code).To(Equal(0))
		e.scrape()
		fdsBefore, rssBefore := e.openFDs(), e.rssKiB()
		type held struct {
			c      net.Conn
			opened time.Time
		}
		conns := make([]held, 0, flood)
		stop := make(chan struct{})
		var dribblers sync.WaitGroup
		DeferCleanup(func() {
			for _, h := range conns {
				h.c.Close()
			}
		})
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
			dribblers.Wait()
		}()
		for i := range flood {
			c := e.dialFrom("127.0.0.1")
			conns = append(conns, held{c: c, opened: time.Now()})
			if i%2 == 1 {
				// One byte a second of an identification line that never ends.
				dribblers.Go(func() {
					t := time.NewTicker(time.Second)
					defer t.Stop()
					b := []byte("SSH-2.0-")
					for {
						if _, err := c.Write(b); err != nil {
							return
						}
						b = []byte("a")
						select {
						case <-stop:
							return
						case <-t.C:
						}
					}
				})
			}
		}
		// Every flood connection got the server's banner: all 1,000 were admitted.
		for i, h := range conns {
			_ = h.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			b := make([]byte, 8)
			_, err := io.ReadFull(h.c, b)
			Expect(err).NotTo(HaveOccurred(), "flood connection %d", i)
			Expect(string(b)).To(Equal("SSH-2.0-"))
		}
		rssFlood := e.rssKiB()
		fmt.Fprintf(GinkgoWriter, "ssh-proxy RSS: %d KiB before, %d KiB with %d waiting connections: %.1f KiB each\n",
			rssBefore, rssFlood, flood, float64(rssFlood-rssBefore)/flood)
		AddReportEntry("KiB per waiting unauthenticated connection", float64(rssFlood-rssBefore)/flood)

		for i := range 20 {
			started := time.Now()
			r := e.ssh("127.0.0.1", e.code(), fmt.Sprintf("echo login-%d", i))
			took := time.Since(started)
			Expect(r.code).To(Equal(0), "login %d: %s", i, r.stderr)
			Expect(r.stdout).To(Equal(fmt.Sprintf("login-%d\n", i)))
			Expect(took).To(BeNumerically("<", 2*time.Second), "login %d took %s", i, took)
		}
		// The first login arrived over the bound and displaced the oldest flood connection
		// (closed by the proxy, EOF after the banner); once it had authenticated it no longer
		// counted, so the others fitted. Nobody was penalised for any of this.
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "unauthenticated_shed")).To(Equal(1.0))
		// The one shed is among the oldest (the proxy registers connections in the order its
		// handlers start, which is close to, not exactly, the order they were dialled: on a
		// loaded CI machine a hundred may overtake each other). Shedding new arrivals would pick
		// from the youngest; a random pick lands in the oldest quarter one time in four.
		closed := make([]bool, len(conns))
		var probe sync.WaitGroup
		for i, h := range conns {
			probe.Go(func() {
				_ = h.c.SetReadDeadline(time.Now().Add(time.Second))
				_, err := io.ReadAll(h.c) // the rest of the banner, then EOF or the deadline
				// EOF, or a reset when the proxy closed with unread bytes of a dribbler.
				closed[i] = !errors.Is(err, os.ErrDeadlineExceeded)
			})
		}
		probe.Wait()
		var shedIdx []int
		for i, c := range closed {
			if c {
				shedIdx = append(shedIdx, i)
			}
		}
		Expect(shedIdx).To(HaveLen(1))
		Expect(shedIdx[0]).To(BeNumerically("<", len(conns)/4), "an old flood connection was shed, not a young one")
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "penalty")).To(Equal(0.0))
		close(stop)
		dribblers.Wait()

		// The rest are closed by the proxy at the grace time (or were shed earlier).
		var wg sync.WaitGroup
		lifetimes := make([]time.Duration, len(conns))
		errs := make([]error, len(conns))
		for i, h := range conns {
			wg.Go(func() {
				_ = h.c.SetReadDeadline(time.Now().Add(grace + 60*time.Second))
				_, err := io.ReadAll(h.c)
				lifetimes[i] = time.Since(h.opened)
				errs[i] = err
			})
		}
		wg.Wait()
		shedEarly := 0
		for i := range conns {
			Expect(errs[i]).NotTo(HaveOccurred(), "connection %d", i)
			if lifetimes[i] < grace-500*time.Millisecond {
				shedEarly++
			}
		}
		shed := metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "unauthenticated_shed")
		Expect(float64(shedEarly)).To(BeNumerically("<=", shed), "closed before the grace time only when shed")
		Eventually(func() float64 {
			return metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "login_grace_time")
		}, 20*time.Second, 200*time.Millisecond).Should(BeNumerically("==", flood-shed))
		Expect(metric(e.scrape(), "ssh_proxy_connections_current")).To(BeNumerically("==", 0))
		// Every descriptor is given back (a little slack for the metrics scrape's keep-alive).
		Eventually(e.openFDs, 20*time.Second, 200*time.Millisecond).Should(BeNumerically("<=", fdsBefore+2))
		// A login after all that still works at once.
		Expect(e.ssh("127.0.0.1", e.code(), "true").code).To(Equal(0))
	})

	It("keeps a person at the password prompt while a flood arrives, shedding the flood instead", func() {
		e.startProxy("max_unauthenticated_connections: 3\n")
		c := e.dialFrom("127.0.0.1")
		defer c.Close()
		prompted := make(chan struct{})
		answer := make(chan string)
		type outcome struct {
			out string
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			defer GinkgoRecover()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			sc, chans, reqs, err := ssh.NewClientConn(c, "127.0.0.1", &ssh.ClientConfig{
				User: e.user(), HostKeyCallback: ssh.InsecureIgnoreHostKey(),
				Auth: []ssh.AuthMethod{ssh.PasswordCallback(func() (string, error) {
					close(prompted)
					return <-answer, nil
				})},
			})
			if err != nil {
				done <- outcome{err: err}
				return
			}
			client := ssh.NewClient(sc, chans, reqs)
			defer client.Close()
			s, err := client.NewSession()
			if err != nil {
				done <- outcome{err: err}
				return
			}
			defer s.Close()
			out, err := s.Output("echo typed-it")
			done <- outcome{out: string(out), err: err}
		}()
		Eventually(prompted, 10*time.Second).Should(BeClosed())
		// Ten silent sockets against a bound of three: they displace each other.
		var silent []net.Conn
		for range 10 {
			s := e.dialFrom("127.0.0.1")
			defer s.Close()
			_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := s.Read(make([]byte, 8))
			Expect(err).NotTo(HaveOccurred())
			silent = append(silent, s)
		}
		answer <- e.code()
		var o outcome
		Eventually(done, 30*time.Second).Should(Receive(&o))
		Expect(o.err).NotTo(HaveOccurred())
		Expect(o.out).To(Equal("typed-it\n"))
		// The oldest silent ones were closed; the newest are still open.
		for _, s := range silent[:8] {
			_, err := io.ReadAll(s)
			Expect(err).NotTo(HaveOccurred())
		}
		_ = silent[9].SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := io.ReadAll(silent[9])
		Expect(err).To(MatchError(os.ErrDeadlineExceeded))
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "unauthenticated_shed")).To(Equal(8.0))
	})

	It("with the default settings, 50 bad codes and 100 bare connects from one address leave its good login working", func() {
		// Only the exempt list is emptied, so that nothing but the default (client addresses not
		// known to be preserved) keeps 127.0.0.1 from being penalised.
		e.startProxy("per_source_penalty_exempt_list: []\n")
		badCodes(e, "127.0.0.1", 50)
		bareConnects(e, "127.0.0.1", 100)
		r := e.ssh("127.0.0.1", e.code(), "echo still-in")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("still-in\n"))
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "penalty")).To(Equal(0.0))
	})

	It("never penalises health-check connects or connections that run out of grace time, even where addresses are preserved", func() {
		e.startProxy(`handshake_timeout: 2s
per_source_penalty_exempt_list: []
client_addresses_preserved: true
per_source_penalties: {enabled: true, authfail: 5s, min: 1s, max: 60s}
`)
		bareConnects(e, "127.0.0.2", 100)
		// Slow typists: connections that completed the key exchange and are still at the
		// password prompt when the grace time ends.
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				defer GinkgoRecover()
				c := e.dialFrom("127.0.0.2")
				defer c.Close()
				_, err := sshClientWithRetries(c, e.user(), func() string { time.Sleep(4 * time.Second); return "late" }, 1)
				Expect(err).To(HaveOccurred())
			})
		}
		wg.Wait()
		Eventually(func() float64 {
			return metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "login_grace_time")
		}, 10*time.Second).Should(Equal(5.0))
		r := e.ssh("127.0.0.2", e.code(), "echo not-penalised")
		Expect(r.code).To(Equal(0), r.stderr)
		// One bad code is penalised (min 1s): the same source is then refused.
		badCodes(e, "127.0.0.2", 1)
		Eventually(func() int { return e.ssh("127.0.0.2", e.code(), "true").code }, 10*time.Second).Should(Equal(255))
		Expect(metric(e.scrape(), "ssh_proxy_refusals_total", "reason", "penalty")).To(BeNumerically(">=", 1))
	})

	It("penalises a source after repeated failed logins, but never an exempt source", func() {
		e.startProxy(`per_source_penalties: {enabled: true, authfail: 5s, min: 8s, max: 60s}
per_source_penalty_exempt_list: [127.0.0.3/32]
client_addresses_preserved: true
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

// badCodes makes n password logins with a wrong one-time code from src (Go client: fast).
func badCodes(e *env, src string, n int) {
	GinkgoHelper()
	for i := range n {
		c := e.dialFrom(src)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		_, err := sshClientWithRetries(c, e.user(), func() string { return fmt.Sprintf("wrong-code-%d", i) }, 1)
		Expect(err).To(HaveOccurred())
		c.Close()
	}
	// The proxy records each failure once it sees the client go.
	Eventually(func() float64 {
		return metric(e.scrape(), "ssh_proxy_auth_attempts_total", "result", "failure")
	}, 10*time.Second, 50*time.Millisecond).Should(BeNumerically(">=", n))
}

// bareConnects opens and closes n TCP connections from src without a byte of SSH, as a load
// balancer's health check does.
func bareConnects(e *env, src string, n int) {
	GinkgoHelper()
	for range n {
		e.dialFrom(src).Close()
	}
	Eventually(func() float64 { return metric(e.scrape(), "ssh_proxy_connections_current") }, 10*time.Second).Should(BeNumerically("<=", 1))
}
