package applog_test

import (
	"log/slog"
	"strings"
	"time"

	loggregator "code.cloudfoundry.org/go-loggregator/v10"
	"code.cloudfoundry.org/go-loggregator/v10/rpc/loggregator_v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/applog"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

// counter is the value of a counter in the metrics registry.
func counter(m *metrics.Metrics, name string) float64 {
	mfs, err := m.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	Fail("no metric " + name)
	return 0
}

var _ = Describe("Emitter", func() {
	var (
		agent   *ingressstub.Server
		emitter *applog.Emitter
		m       *metrics.Metrics
		logs    *logbuf.Buffer
		perms   *login.Grant
		cfg     applog.Config
	)

	BeforeEach(func() {
		ca, err := certs.NewCA("loggregator CA")
		Expect(err).NotTo(HaveOccurred())
		// The agent's certificate names "metron", as cf-deployment's loggregator_tls_agent does.
		server, err := ca.Issue("metron", "metron")
		Expect(err).NotTo(HaveOccurred())
		agent = ingressstub.New("127.0.0.1:0", certs.ServerTLS(server, ca.Pool()))
		DeferCleanup(agent.Close)

		dir := GinkgoT().TempDir()
		caFile, err := ca.WriteFile(dir, "ca")
		Expect(err).NotTo(HaveOccurred())
		client, err := ca.Issue("metron", "metron")
		Expect(err).NotTo(HaveOccurred())
		crt, key, err := client.WriteFiles(dir, "client")
		Expect(err).NotTo(HaveOccurred())
		tlsCfg, err := loggregator.NewIngressTLSConfig(caFile, crt, key)
		Expect(err).NotTo(HaveOccurred())

		m = metrics.New()
		logs = &logbuf.Buffer{}
		cfg = applog.Config{Address: agent.Addr(), TLS: tlsCfg, SourceID: "ssh_proxy", InstanceID: "vm-1",
			Metrics: m, Logger: slog.New(slog.NewJSONHandler(logs, nil)), ReportInterval: 100 * time.Millisecond,
			GaugeInterval: time.Hour}
		perms = &login.Grant{LogTags: map[string]string{"source_id": "app-guid", "instance_id": "2", "app_name": "myapp"}}
	})

	start := func() {
		var err error
		emitter, err = applog.New(cfg)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { emitter.Close(5 * time.Second) })
	}

	payloads := func() []string {
		var out []string
		for _, e := range agent.Logs("") {
			out = append(out, string(e.GetLog().GetPayload()))
		}
		return out
	}

	It("writes both lines into the app's stream as OUT lines of source type SSH with the app's tags", func() {
		start()
		ended := emitter.SessionStarted(perms, "10.0.0.9:51234")
		ended()
		ended() // a second call changes nothing
		Eventually(payloads, 10*time.Second).Should(Equal([]string{
			"Successful remote access by 10.0.0.9:51234", "Remote access ended for 10.0.0.9:51234"}))
		for _, e := range agent.Logs("app-guid") {
			Expect(e.GetInstanceId()).To(Equal("2"))
			Expect(e.GetLog().GetType()).To(Equal(loggregator_v2.Log_OUT))
			Expect(e.GetTags()).To(Equal(map[string]string{"source_type": "SSH", "origin": "ssh_proxy",
				"source_id": "app-guid", "instance_id": "2", "app_name": "myapp"}))
		}
		Expect(ingressstub.FormatLog(agent.Logs("app-guid")[0])).To(MatchRegexp(
			`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d[+-]\d{4} \[SSH/2\] OUT Successful remote access by 10\.0\.0\.9:51234$`))
	})

	It("writes nothing into any app stream for a session without an app identity, but counts it", func() {
		start()
		ended := emitter.SessionStarted(&login.Grant{}, "10.0.0.9:1")
		Eventually(func() []float64 { return agent.Gauges(applog.GaugeName) }, 10*time.Second).Should(ContainElement(1.0))
		ended()
		Eventually(func() []float64 { return agent.Gauges(applog.GaugeName) }, 10*time.Second).Should(HaveExactElements(1.0, 0.0))
		Consistently(func() []*loggregator_v2.Envelope { return agent.Logs("") }, 500*time.Millisecond).Should(BeEmpty())
	})

	It("sends the ssh-connections gauge as the proxy (source ssh_proxy, origin ssh_proxy) as sessions come and go", func() {
		start()
		a := emitter.SessionStarted(perms, "10.0.0.9:1")
		Eventually(func() []float64 { return agent.Gauges(applog.GaugeName) }, 10*time.Second).Should(HaveExactElements(1.0))
		b := emitter.SessionStarted(perms, "10.0.0.9:2")
		Eventually(func() []float64 { return agent.Gauges(applog.GaugeName) }, 10*time.Second).Should(HaveExactElements(1.0, 2.0))
		a()
		b()
		Eventually(func() float64 {
			g := agent.Gauges(applog.GaugeName)
			return g[len(g)-1]
		}, 10*time.Second).Should(Equal(0.0))
		for _, e := range agent.Envelopes() {
			if g := e.GetGauge(); g != nil {
				Expect(e.GetSourceId()).To(Equal("ssh_proxy"))
				Expect(e.GetInstanceId()).To(Equal("vm-1"))
				Expect(e.GetTags()).To(Equal(map[string]string{"origin": "ssh_proxy"}))
				Expect(g.GetMetrics()[applog.GaugeName].GetUnit()).To(Equal("Metric"))
			}
		}
	})

	It("re-sends the gauge periodically", func() {
		cfg.GaugeInterval = 100 * time.Millisecond
		start()
		Eventually(func() int { return len(agent.Gauges(applog.GaugeName)) }, 10*time.Second).Should(BeNumerically(">=", 3))
	})

	It("never blocks a session while the agent hangs: drops are counted and logged once per interval", func() {
		cfg.QueueSize = 4
		agent.Hang()
		start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range 5000 {
				emitter.SessionStarted(perms, "10.0.0.9:3")()
			}
		}()
		Eventually(done, 10*time.Second).Should(BeClosed())
		Expect(counter(m, "ssh_proxy_loggregator_envelopes_dropped_total")).To(BeNumerically(">", 0))
		Eventually(logs.String, 5*time.Second).Should(ContainSubstring("ssh-proxy.loggregator-envelopes-dropped"))
		Expect(strings.Count(logs.String(), "loggregator-envelopes-dropped")).To(BeNumerically("<", 20))
		agent.Resume()
	})

	It("never blocks a session while the agent is down: failed sends are counted", func() {
		agent.Stop()
		start()
		done := make(chan struct{})
		go func() {
			defer close(done)
			emitter.SessionStarted(perms, "10.0.0.9:4")()
		}()
		Eventually(done, time.Second).Should(BeClosed())
		Eventually(func() float64 {
			return counter(m, "ssh_proxy_loggregator_send_failures_total")
		}, 10*time.Second).Should(BeNumerically(">", 0))
		Eventually(logs.String, 5*time.Second).Should(ContainSubstring("ssh-proxy.loggregator-send-failed"))
	})

	It("closes promptly even while the agent hangs", func() {
		agent.Hang()
		start()
		for range 2000 {
			emitter.SessionStarted(perms, "10.0.0.9:5")()
		}
		begun := time.Now()
		emitter.Close(500 * time.Millisecond)
		Expect(time.Since(begun)).To(BeNumerically("<", 5*time.Second))
	})
})
