package hardening_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

const (
	appGUID      = "8c3e1a52-6f0d-4b9e-a7c4-1d2e3f4a5b60"
	processGUID  = appGUID + "-4e5f6a7b-8c9d-4e0f-9a1b-2c3d4e5f6a7b"
	instanceGUID = "inst-hardening-0"
	containerSSH = 2222
	clientSecret = "hardening-uaa-client-secret"
)

// env is one deployment on 127.0.0.1: stand-ins, our sshd, one ssh-proxy.
type env struct {
	dir string
	ca  *certs.CA
	uaa *uaastub.Server
	cc  *ccstub.Server
	bbs *bbsstub.Server

	sshd        *gexec.Session
	sshdPort    int
	sshdHostKey ssh.Signer
	proxyKeyPEM string

	proxy       *gexec.Session
	proxyPort   int
	healthPort  int
	metricsPort int
	auditFile   string

	userOverride string // when set, the SSH user instead of cf:<app>/0
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func ed25519Key() (ssh.Signer, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	b, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return s, string(pem.EncodeToMemory(b))
}

func waitForPort(port int) {
	Eventually(func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
}

func newEnv() *env {
	e := &env{dir: GinkgoT().TempDir()}
	var err error
	e.ca, err = certs.NewCA("hardening-ca")
	Expect(err).NotTo(HaveOccurred())
	server, err := e.ca.Issue("127.0.0.1", "127.0.0.1", "localhost")
	Expect(err).NotTo(HaveOccurred())
	e.uaa = uaastub.New("ssh-proxy", clientSecret, certs.ServerTLS(server, nil))
	DeferCleanup(e.uaa.Close)
	e.cc = ccstub.New(certs.ServerTLS(server, nil))
	DeferCleanup(e.cc.Close)
	e.cc.SetValidator(func(token string) (string, bool) {
		_, name, ok := e.uaa.ValidateToken(token)
		return name, ok
	})
	e.cc.AddApp(appGUID, processGUID, 1, true)
	e.bbs = bbsstub.New(certs.ServerTLS(server, e.ca.Pool()))
	DeferCleanup(e.bbs.Close)
	e.startSSHD()
	route, err := json.Marshal(map[string]any{
		"container_port":       containerSSH,
		"private_key":          e.proxyKeyPEM,
		"host_fingerprint":     fingerprint.MD5Hex(e.sshdHostKey.PublicKey()),
		"host_256_fingerprint": fingerprint.SHA256Base64(e.sshdHostKey.PublicKey()),
	})
	Expect(err).NotTo(HaveOccurred())
	e.bbs.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: processGUID, Routes: map[string][]byte{"diego-ssh": route}})
	e.bbs.SetActualLRPs(processGUID, bbs.ActualLRP{
		ProcessGUID: processGUID, Index: 0, InstanceGUID: instanceGUID, CellID: "cell-0",
		State: bbs.StateRunning, Address: "127.0.0.1", InstanceAddress: "10.255.0.9",
		PreferredAddress: bbs.PreferredAddressHost,
		Ports:            []bbs.PortMapping{{ContainerPort: containerSSH, HostPort: uint32(e.sshdPort)}},
	})
	return e
}

func (e *env) startSSHD() {
	var hostPEM string
	e.sshdHostKey, hostPEM = ed25519Key()
	proxyKey, proxyPEM := ed25519Key()
	e.proxyKeyPEM = rememberSecret(proxyPEM)
	e.sshdPort = freePort()
	cmd := exec.Command(sshdBin, "-address", "127.0.0.1:"+strconv.Itoa(e.sshdPort), "-hostKey", hostPEM,
		"-authorizedKey", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(proxyKey.PublicKey()))))
	cmd.Dir = e.dir
	var err error
	e.sshd, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	sshd := e.sshd
	DeferCleanup(func() {
		secrets.Lock()
		secrets.logs = append(secrets.logs, string(sshd.Err.Contents())+string(sshd.Out.Contents()))
		secrets.Unlock()
	})
	DeferCleanup(func() { sshd.Kill().Wait(10 * time.Second) })
	waitForPort(e.sshdPort)
}

// startProxy writes a config (the common part plus extra YAML) and runs ssh-proxy until the
// health endpoint answers 200.
func (e *env) startProxy(extra string) {
	write := func(name, content string) string {
		p := filepath.Join(e.dir, name)
		Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
		return p
	}
	caFile := must(e.ca.WriteFile(e.dir, "ca"))
	client := must(e.ca.Issue("ssh-proxy"))
	crt, key, err := client.WriteFiles(e.dir, "client")
	Expect(err).NotTo(HaveOccurred())
	_, hostPEM := ed25519Key()
	rememberSecret(hostPEM)
	hostKey := write("host_key", hostPEM)
	e.proxyPort, e.healthPort, e.metricsPort = freePort(), freePort(), freePort()
	e.auditFile = filepath.Join(e.dir, "audit.log")
	cfg := fmt.Sprintf(`address: 127.0.0.1:%d
health_check_address: 127.0.0.1:%d
log_level: debug
host_key_files: [%s]
communication_timeout: 3s
enable_cf_auth: true
enable_diego_auth: true
diego_credentials: %s
uaa:
  token_url: %s
  client_id: ssh-proxy
  client_secret: %s
  ca_cert_file: %s
cc:
  internal_url: %s
  ca_cert_file: %s
bbs:
  address: %s
  ca_cert_file: %s
  client_cert_file: %s
  client_key_file: %s
metrics:
  address: 127.0.0.1:%d
audit_log_file: %s
`, e.proxyPort, e.healthPort, hostKey, rememberSecret("diego-shared-secret-hardening"), e.uaa.URL(),
		rememberSecret(clientSecret), caFile, e.cc.URL(), caFile, e.bbs.URL(), caFile, crt, key, e.metricsPort, e.auditFile) + extra
	file := write("ssh_proxy.yml", cfg)
	cmd := exec.Command(proxyBin, "-config", file)
	e.proxy, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	proxy, audit := e.proxy, e.auditFile
	// Registered before the kill, so it runs after it (cleanups run last-in first-out) and
	// before the temporary directory goes.
	DeferCleanup(func() {
		log := string(proxy.Err.Contents())
		a, _ := os.ReadFile(audit)
		secrets.Lock()
		secrets.logs = append(secrets.logs, log, string(a))
		secrets.Unlock()
	})
	DeferCleanup(func() { proxy.Kill().Wait(10 * time.Second) })
	Eventually(e.healthStatus, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK))
}

func (e *env) healthStatus() (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", e.healthPort))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// openFDs counts the proxy process's open file descriptors.
func (e *env) openFDs() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.proxy.Command.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

func (e *env) proxyLog() string { return string(e.proxy.Err.Contents()) }

// logLines are the proxy's JSON log lines with the given msg.
func (e *env) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(e.proxyLog(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (e *env) auditLines() []map[string]any {
	b, err := os.ReadFile(e.auditFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		Expect(json.Unmarshal([]byte(l), &m)).To(Succeed(), l)
		out = append(out, m)
	}
	return out
}

func (e *env) code() string { return rememberSecret(e.uaa.IssueCode()) }

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
	return []string{
		"-F", "/dev/null", "-b", src,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=20",
		"-p", strconv.Itoa(e.proxyPort), e.user() + "@127.0.0.1",
	}
}

func (e *env) sshCmd(src, password string, args ...string) *exec.Cmd {
	cmd := exec.Command("sshpass", append(append([]string{"-e", "ssh"}, e.sshArgs(src)...), args...)...)
	cmd.Env = append(os.Environ(), "SSHPASS="+password)
	return cmd
}

// ssh runs one OpenSSH client to completion (bounded at 60s).
func (e *env) ssh(src, password string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := e.sshCmd(src, password, args...)
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env = cmd.Env
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "running ssh: %v", err)
		code = exit.ExitCode()
	}
	Expect(ctx.Err()).NotTo(HaveOccurred(), "ssh did not finish: %s", errOut.String())
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
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
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", e.metricsPort))
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
