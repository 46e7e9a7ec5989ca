package hardening_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

const (
	appGUID      = "8c3e1a52-6f0d-4b9e-a7c4-1d2e3f4a5b60"
	processGUID  = appGUID + "-4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b"
	instanceGUID = "inst-hardening-0"
	clientSecret = "hardening-uaa-client-secret"
)

// env is one deployment on 127.0.0.1 (see proxyrig), with the names the specs use. Every
// credential it hands out and every log it collects goes to secrets.
type env struct {
	rig *proxyrig.Rig
	uaa *uaastub.Server
	cc  *ccstub.Server
	bbs *bbsstub.Server

	sshd *gexec.Session

	proxy     *gexec.Session
	proxyPort int

	userOverride string // when set, the SSH user instead of cf:<app>/0
}

func newEnv() *env {
	r := proxyrig.New(proxyrig.Options{
		ProxyBin: proxyBin, SSHDBin: sshdBin,
		CAName: "hardening-ca", ClientSecret: clientSecret,
		AppGUID: appGUID, ProcessGUID: processGUID, InstanceGUID: instanceGUID, Instances: 1,
		CellID: "cell-0", InstanceAddress: "10.255.0.9",
		Secret: rememberSecret,
		Logs: func(logs ...string) {
			secrets.Lock()
			secrets.logs = append(secrets.logs, logs...)
			secrets.Unlock()
		},
	})
	return &env{rig: r, uaa: r.UAA, cc: r.CC, bbs: r.BBS, sshd: r.SSHD}
}

// startProxy writes a config (the common part plus extra YAML) and runs ssh-proxy until the
// health endpoint answers 200.
func (e *env) startProxy(extra string) {
	e.rig.StartProxy(proxyrig.ProxyConfig{
		CommunicationTimeout: "3s", DiegoCredentials: "diego-shared-secret-hardening",
		Metrics: true, AuditLog: true, Extra: extra,
	})
	e.proxy, e.proxyPort = e.rig.Proxy, e.rig.ProxyPort
}

func (e *env) healthStatus() (int, error) { return e.rig.HealthStatus() }

// openFDs counts the proxy process's open file descriptors.
func (e *env) openFDs() int { return e.rig.OpenFDs() }

func (e *env) proxyLog() string { return e.rig.ProxyLog() }

// rssKiB is the proxy process's resident set size (VmRSS).
func (e *env) rssKiB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.proxy.Command.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.Atoi(f[1])
			Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	Expect(string(b)).To(ContainSubstring("VmRSS:"))
	return 0
}

// logLines are the proxy's lager lines with the given message, flattened (proxyrig.LogLines).
func (e *env) logLines(msg string) []map[string]any { return proxyrig.LogLines(e.proxyLog(), msg) }

func (e *env) code() string { return e.rig.Code() }

func (e *env) user() string {
	if e.userOverride != "" {
		return e.userOverride
	}
	return "cf:" + appGUID + "/0"
}

type result struct {
	stdout, stderr string
	code           int
}

// sshArgs are OpenSSH options for a password login from the loopback address src.
func (e *env) sshArgs(src string) []string {
	return append(proxyrig.ClientOptions(src, 20), "-p", strconv.Itoa(e.proxyPort), e.user()+"@127.0.0.1")
}

func (e *env) sshCmd(src, password string, args ...string) *exec.Cmd {
	return proxyrig.ClientCmd(context.Background(), password, "ssh", append(e.sshArgs(src), args...)...)
}

// ssh runs one OpenSSH client to completion (bounded at 60s).
func (e *env) ssh(src, password string, args ...string) result {
	r := proxyrig.RunClient(password, nil, "ssh", append(e.sshArgs(src), args...)...)
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

// dialFrom opens a TCP connection to the proxy from the loopback address src.
func (e *env) dialFrom(src string) net.Conn {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.proxyPort))
	Expect(err).NotTo(HaveOccurred())
	return c
}

// goLogin completes an SSH login over an existing connection with a fresh code and runs cmd.
func (e *env) goLogin(c net.Conn, cmd string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(c, "127.0.0.1", &ssh.ClientConfig{
		User: e.user(), Auth: []ssh.AuthMethod{ssh.Password(e.code())},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		return "", err
	}
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return string(out), err
}

// scrape fetches and parses the metrics endpoint.
func (e *env) scrape() map[string]*dto.MetricFamily {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.rig.MetricsPort))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return fams
}

// metric is the value of name with all the given label pairs (histograms: sample count).
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}
