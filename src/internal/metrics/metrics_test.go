package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

func scrape(url string) map[string]*dto.MetricFamily {
	resp, err := http.Get(url)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return fams
}

func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	Expect(ok).To(BeTrue(), "no family %s", name)
outer:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	Fail(fmt.Sprintf("no %s with %v", name, labels))
	return 0
}

var _ = Describe("Metrics", func() {
	It("serves what was recorded, with bounded labels, in the text format", func() {
		m := New()
		e, err := Listen("127.0.0.1:0", nil, m)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e.Close)
		m.ConnOpened()
		m.ConnOpened()
		m.ConnClosed()
		m.Auth(MethodPassword, true)
		m.Auth(MethodPassword, false)
		m.Auth(MethodPassword, false)
		m.Refused(RefusedPenalty)
		m.Dial(30*time.Millisecond, nil)
		m.Dial(time.Second, errors.New("x"))
		m.Bytes(10, 2000)
		m.Channel("session")
		m.Channel("made-up@example.com")
		m.SetDraining(true)

		f := scrape("http://" + e.Addr().String() + "/metrics")
		Expect(value(f, "ssh_proxy_connections_total")).To(Equal(2.0))
		Expect(value(f, "ssh_proxy_connections_current")).To(Equal(1.0))
		Expect(value(f, "ssh_proxy_auth_attempts_total", "method", "password", "result", "failure")).To(Equal(2.0))
		Expect(value(f, "ssh_proxy_auth_attempts_total", "method", "password", "result", "success")).To(Equal(1.0))
		Expect(value(f, "ssh_proxy_refusals_total", "reason", "penalty")).To(Equal(1.0))
		Expect(value(f, "ssh_proxy_refusals_total", "reason", "unauthenticated_shed")).To(Equal(0.0))
		Expect(value(f, "ssh_proxy_backend_dial_duration_seconds", "result", "success")).To(Equal(1.0))
		Expect(value(f, "ssh_proxy_bytes_relayed_total", "direction", "to_client")).To(Equal(2000.0))
		Expect(value(f, "ssh_proxy_channels_total", "channel_type", "other")).To(Equal(1.0))
		Expect(value(f, "ssh_proxy_draining")).To(Equal(1.0))

		resp, err := http.Get("http://" + e.Addr().String() + "/")
		Expect(err).NotTo(HaveOccurred())
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
	})

	It("serves HTTPS when given a TLS config", func() {
		ca, err := certs.NewCA("metrics-ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("127.0.0.1", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		m := New()
		m.Refused(RefusedDraining)
		e, err := Listen("127.0.0.1:0", certs.ServerTLS(kp, nil), m)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(e.Close)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(ca.Pool(), nil)}}
		resp, err := c.Get("https://" + e.Addr().String() + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(value(fams, "ssh_proxy_refusals_total", "reason", "draining")).To(Equal(1.0))
		plain, err := http.Get("http://" + e.Addr().String() + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		plain.Body.Close()
		Expect(plain.StatusCode).To(Equal(http.StatusBadRequest), "plain HTTP is not served")
	})

	It("records nothing and does not panic when nil", func() {
		var m *Metrics
		m.ConnOpened()
		m.Auth(MethodPassword, true)
		m.Bytes(1, 1)
		m.SetDraining(true)
	})
})
