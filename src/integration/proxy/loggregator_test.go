package proxy_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"code.cloudfoundry.org/go-loggregator/v10/rpc/loggregator_v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
)

var _ = Describe("ssh-proxy with Loggregator", func() {
	var (
		e       *env
		ingress *ingressstub.Server
	)

	BeforeEach(func() {
		e = newEnv()
		e.startProxy(proxyOpts{loggregator: true, metrics: true})
		ingress = e.rig.Ingress
	})

	appLines := func() []string {
		var out []string
		for _, env := range ingress.Logs(appGUID) {
			out = append(out, string(env.GetLog().GetPayload()))
		}
		return out
	}

	It("writes one access line and one end line per session into the app's stream, with the app's tags", func() {
		r := e.ssh(e.code(), nil, "echo hi")
		Expect(r.code).To(Equal(0), r.stderr)
		Eventually(appLines, 20*time.Second).Should(HaveLen(2))
		Consistently(appLines, time.Second).Should(HaveLen(2))

		lines := appLines()
		m := regexp.MustCompile(`^Successful remote access by (127\.0\.0\.1:\d+)$`).FindStringSubmatch(lines[0])
		Expect(m).NotTo(BeNil(), "first line: %q", lines[0])
		Expect(lines[1]).To(Equal("Remote access ended for " + m[1]))

		for _, env := range ingress.Logs(appGUID) {
			Expect(env.GetSourceId()).To(Equal(appGUID))
			Expect(env.GetInstanceId()).To(Equal("0"))
			Expect(env.GetLog().GetType()).To(Equal(loggregator_v2.Log_OUT))
			Expect(env.GetTags()).To(Equal(map[string]string{
				"source_type": "SSH", "origin": "ssh_proxy", "source_id": appGUID, "app_id": appGUID, "app_name": "dora",
				"process_type": "web", "instance_id": "0", "process_instance_id": instanceGUID,
			}))
			GinkgoWriter.Println("envelope as received:", env.String())
		}
		// Nothing else went to any app stream.
		Expect(ingress.Logs("")).To(HaveLen(2))
	})

	It("writes nothing into the app's stream for refused logins", func() {
		r := e.ssh("not-a-code", nil, "true")
		Expect(r.code).NotTo(Equal(0))
		// Permitted, but the instance crashed: authentication succeeds, the session is refused.
		e.setRunning("CRASHED")
		r = e.ssh(e.code(), nil, "true")
		Expect(r.code).NotTo(Equal(0))
		Expect(r.stderr).To(ContainSubstring("open failed: connect failed: instance 0 is CRASHED"))
		Consistently(func() []*loggregator_v2.Envelope { return ingress.Logs("") }, 2*time.Second).Should(BeEmpty())
		Expect(metricsPage(e)).To(ContainSubstring(`ssh_proxy_refusals_total{reason="instance"} 1`))
	})

	It("writes the same lines for diego:<process-guid>/<index> logins", func() {
		e.proxy.Kill().Wait(10 * time.Second)
		e.startProxy(proxyOpts{loggregator: true, diegoCredentials: "diego-secret"})
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "diego:"+processGUID+"/0@127.0.0.1", "true")
		Expect(runClient("diego-secret", nil, "ssh", args...).code).To(Equal(0))
		Eventually(appLines, 20*time.Second).Should(HaveExactElements(
			HavePrefix("Successful remote access by 127.0.0.1:"), HavePrefix("Remote access ended for 127.0.0.1:")))
	})

	It("raises and lowers the ssh-connections gauge with sessions", func() {
		gaugeNow := func() float64 {
			g := ingress.Gauges("ssh-connections")
			if len(g) == 0 {
				return -1
			}
			return g[len(g)-1]
		}
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "-N", e.user()+"@127.0.0.1")
		cmd := exec.Command("sshpass", append([]string{"-e", "ssh"}, args...)...)
		cmd.Env = append(os.Environ(), "SSHPASS="+e.code())
		held, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { held.Kill().Wait(10 * time.Second) })
		Eventually(gaugeNow, 20*time.Second).Should(Equal(1.0))

		Expect(e.ssh(e.code(), nil, "sleep 1").code).To(Equal(0))
		Expect(ingress.Gauges("ssh-connections")).To(ContainElement(2.0))
		Eventually(gaugeNow, 20*time.Second).Should(Equal(1.0))

		held.Terminate().Wait(10 * time.Second)
		Eventually(gaugeNow, 20*time.Second).Should(Equal(0.0))
		for _, env := range ingress.Envelopes() {
			if env.GetGauge() != nil {
				Expect(env.GetSourceId()).To(Equal("ssh_proxy"))
				Expect(env.GetInstanceId()).To(Equal("rig-proxy-0"))
				Expect(env.GetTags()).To(HaveKeyWithValue("origin", "ssh_proxy"))
			}
		}
	})

	It("changes nothing for the user while the Loggregator agent is down, and counts what was lost", func() {
		ingress.Stop()
		started := time.Now()
		r := e.ssh(e.code(), nil, "echo still here")
		Expect(r.code).To(Equal(0), r.stderr)
		Expect(r.stdout).To(Equal("still here\n"))
		Expect(time.Since(started)).To(BeNumerically("<", 15*time.Second))
		Eventually(func() float64 {
			return e.rig.Metric("ssh_proxy_loggregator_send_failures_total") + e.rig.Metric("ssh_proxy_loggregator_envelopes_dropped_total")
		}, 30*time.Second, 200*time.Millisecond).Should(BeNumerically(">", 0))
		Eventually(e.proxyLog, 30*time.Second).Should(ContainSubstring("ssh-proxy.loggregator-send-failed"))

		// Once the agent is back, lines flow again within seconds (the client reconnects with
		// a short backoff; lines sent before it has are lost and counted).
		Expect(ingress.Start()).To(Succeed())
		Eventually(func() []string {
			Expect(e.ssh(e.code(), nil, "true").code).To(Equal(0))
			return appLines()
		}, 30*time.Second, time.Second).Should(ContainElement(HavePrefix("Successful remote access by")))
	})

	It("changes nothing for the user while the Loggregator agent hangs", func() {
		ingress.Hang()
		DeferCleanup(ingress.Resume)
		for range 3 {
			r := e.ssh(e.code(), nil, "echo ok")
			Expect(r.code).To(Equal(0), r.stderr)
			Expect(r.stdout).To(Equal("ok\n"))
		}
	})
})
