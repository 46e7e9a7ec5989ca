// Package proxyrig is the test rig the proxy and hardening integration suites share: it builds
// ssh-proxy and sshd, runs the UAA, Cloud Controller and BBS stand-ins over TLS, our sshd and
// one ssh-proxy on 127.0.0.1, writes the proxy's config file, and runs OpenSSH clients under
// sshpass. Everything it starts is stopped by a Ginkgo DeferCleanup.
package proxyrig

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
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
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

// ContainerSSH is the container port the sshd stands for.
const ContainerSSH = 2222

// BuildBinaries is the first function of a SynchronizedBeforeSuite: it checks that the given
// client tools are on PATH and builds ./cmd/ssh-proxy and ./cmd/sshd (unless SSH_PROXY_BINARY
// or SSHD_BINARY name prebuilt ones) into a temporary directory removed after the suite. The
// calling package must live two levels below the module root (src/integration/<suite>).
func BuildBinaries(suite string, tools ...string) []byte {
	for _, tool := range tools {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the %s suite needs %s", suite, tool)
	}
	dir, err := os.MkdirTemp("", "ssh-proxy-"+suite+"-bin")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir) // runs after the whole suite, on this process
	wd, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	build := func(pkg, out string) {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = filepath.Join(wd, "..", "..")
		cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
		Expect(cmd.Run()).To(Succeed(), "go build %s", pkg)
	}
	proxy, sshd := os.Getenv("SSH_PROXY_BINARY"), os.Getenv("SSHD_BINARY")
	if proxy != "" {
		Expect(proxy).To(BeAnExistingFile())
	} else {
		proxy = filepath.Join(dir, "ssh-proxy")
		build("./cmd/ssh-proxy", proxy)
	}
	if sshd != "" {
		Expect(sshd).To(BeAnExistingFile())
	} else {
		sshd = filepath.Join(dir, "sshd")
		build("./cmd/sshd", sshd)
	}
	return []byte(proxy + "\n" + sshd)
}

// Binaries splits what BuildBinaries returned into the ssh-proxy and sshd paths.
func Binaries(b []byte) (proxy, sshd string) {
	parts := strings.SplitN(string(b), "\n", 2)
	Expect(parts).To(HaveLen(2))
	return parts[0], parts[1]
}

// Ed25519Key is a fresh key as a signer and as an OpenSSH PEM private key.
func Ed25519Key() (ssh.Signer, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	b, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return s, string(pem.EncodeToMemory(b))
}

// Options describe the deployment; the zero value of each hook does nothing.
type Options struct {
	ProxyBin, SSHDBin string

	CAName       string
	ClientSecret string // UAA client secret of the ssh-proxy client

	AppGUID, ProcessGUID, InstanceGUID string
	Instances                          int
	CellID, InstanceAddress            string
	// WithAppRoute adds a cf-router route to the desired LRP and an 8080 port mapping to
	// the actual LRP, as a real web app has.
	WithAppRoute bool
	// LogGUID and MetricTags go into the desired LRP (the app's log stream).
	LogGUID    string
	MetricTags map[string]bbs.MetricTagValue

	// Secret, when set, is handed every credential the rig generates or configures and returns
	// it unchanged (for a suite that later greps logs for them).
	Secret func(string) string
	// Logs, when set, receives each process's output after it has been killed (and, for the
	// proxy, the audit log), before the temporary directory is removed.
	Logs func(...string)
}

// Rig is one complete deployment on 127.0.0.1: stand-ins, our sshd, and one ssh-proxy.
type Rig struct {
	Opts Options
	Dir  string
	CA   *certs.CA

	UAA *uaastub.Server
	CC  *ccstub.Server
	BBS *bbsstub.Server

	SSHD        *gexec.Session
	SSHDPort    int
	SSHDHostKey ssh.Signer
	ProxyKeyPEM string

	TLSFront *TLSFront // optional TLS terminator in front of the sshd (backends TLS)

	// Ingress is the Loggregator agent stand-in (started by a config with Loggregator set).
	Ingress *ingressstub.Server

	Proxy       *gexec.Session
	ProxyPort   int
	HealthPort  int
	MetricsPort int
	ConfigFile  string
	AuditFile   string
}

func (r *Rig) secret(v string) string {
	if r.Opts.Secret != nil {
		return r.Opts.Secret(v)
	}
	return v
}

// New starts the stand-ins and the sshd and registers the app with one running instance.
func New(o Options) *Rig {
	r := &Rig{Opts: o, Dir: GinkgoT().TempDir()}
	var err error
	r.CA, err = certs.NewCA(o.CAName)
	Expect(err).NotTo(HaveOccurred())
	server, err := r.CA.Issue("127.0.0.1", "127.0.0.1", "localhost")
	Expect(err).NotTo(HaveOccurred())

	r.UAA = uaastub.New("ssh-proxy", o.ClientSecret, certs.ServerTLS(server, nil))
	DeferCleanup(r.UAA.Close)
	r.CC = ccstub.New(certs.ServerTLS(server, nil))
	DeferCleanup(r.CC.Close)
	r.CC.SetValidator(func(token string) (string, bool) {
		_, name, ok := r.UAA.ValidateToken(token)
		return name, ok
	})
	r.CC.AddApp(o.AppGUID, o.ProcessGUID, o.Instances, true)
	r.BBS = bbsstub.New(certs.ServerTLS(server, r.CA.Pool()))
	DeferCleanup(r.BBS.Close)

	r.startSSHD()
	r.SetRoute(nil)
	r.SetRunning(bbs.StateRunning)
	return r
}

func (r *Rig) startSSHD() {
	var hostPEM string
	r.SSHDHostKey, hostPEM = Ed25519Key()
	proxyKey, proxyPEM := Ed25519Key()
	r.ProxyKeyPEM = r.secret(proxyPEM)
	r.SSHDPort = procs.FreePort()
	cmd := exec.Command(r.Opts.SSHDBin,
		"-address", "127.0.0.1:"+strconv.Itoa(r.SSHDPort),
		"-hostKey", hostPEM,
		"-authorizedKey", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(proxyKey.PublicKey()))),
	)
	cmd.Dir = r.Dir
	var sshd *procs.Process
	if r.Opts.Logs != nil {
		// Registered before the process's stop, so it runs after it (cleanups run last-in
		// first-out) and sees all of its output.
		DeferCleanup(func() { r.Opts.Logs(sshd.Output()) })
	}
	sshd = procs.Start("sshd", cmd)
	r.SSHD = sshd.Session
	sshd.WaitListening(procs.Addr(r.SSHDPort))
}

// SetRoute stores the desired LRP with a diego-ssh route pinning the sshd's host key; edit
// may change the route first.
func (r *Rig) SetRoute(edit func(route map[string]any)) {
	route := map[string]any{
		"container_port":       ContainerSSH,
		"private_key":          r.ProxyKeyPEM,
		"host_fingerprint":     fingerprint.MD5Hex(r.SSHDHostKey.PublicKey()),
		"host_256_fingerprint": fingerprint.SHA256Base64(r.SSHDHostKey.PublicKey()),
	}
	if edit != nil {
		edit(route)
	}
	raw, err := json.Marshal(route)
	Expect(err).NotTo(HaveOccurred())
	routes := map[string][]byte{"diego-ssh": raw}
	if r.Opts.WithAppRoute {
		routes["cf-router"] = []byte(`[{"hostnames":["app.example.com"],"port":8080}]`)
	}
	r.BBS.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: r.Opts.ProcessGUID, Instances: int32(r.Opts.Instances), Routes: routes,
		LogGUID: r.Opts.LogGUID, MetricTags: r.Opts.MetricTags})
}

// SetRunning stores index 0 in the given state, mapped to the sshd (and TLS front, if any).
func (r *Rig) SetRunning(state string) {
	pm := bbs.PortMapping{ContainerPort: ContainerSSH, HostPort: uint32(r.SSHDPort)}
	if r.TLSFront != nil {
		pm.HostTLSProxyPort = uint32(r.TLSFront.Port)
	}
	ports := []bbs.PortMapping{pm}
	if r.Opts.WithAppRoute {
		ports = []bbs.PortMapping{{ContainerPort: 8080, HostPort: 1}, pm}
	}
	r.BBS.SetActualLRPs(r.Opts.ProcessGUID, bbs.ActualLRP{
		ProcessGUID: r.Opts.ProcessGUID, Index: 0, InstanceGUID: r.Opts.InstanceGUID, CellID: r.Opts.CellID,
		State: state, Address: "127.0.0.1", InstanceAddress: r.Opts.InstanceAddress,
		PreferredAddress: bbs.PreferredAddressHost,
		Ports:            ports,
	})
}

// ProxyConfig selects the optional parts of the ssh-proxy config file.
type ProxyConfig struct {
	CommunicationTimeout string // e.g. "5s"
	BackendsTLS          bool
	// NextHostKeyPEM, when set, is configured as next_host_key_files[0].
	NextHostKeyPEM string
	// DiegoCredentials, when set, turns on diego authentication with this secret.
	DiegoCredentials string
	// Metrics and AuditLog turn on the metrics endpoint (MetricsPort) and the audit log
	// (AuditFile).
	Metrics, AuditLog bool
	// Loggregator sends app log lines and the gauge to the Ingress stand-in (started here
	// when it is not running yet).
	Loggregator bool
	// HostKeyPEM, when set, is the proxy's host key (default: a fresh ed25519 key).
	HostKeyPEM string
	// DisableCFAuth sets enable_cf_auth: false.
	DisableCFAuth bool
	// CCPath is appended to the Cloud Controller stand-in's URL in cc.internal_url (a URL that
	// does not serve the ssh_access check).
	CCPath string
	// Extra is appended to the file as is.
	Extra string
}

// WriteConfig writes a complete ssh_proxy.yml (fresh ports, host key and client certificate)
// and returns its path.
func (r *Rig) WriteConfig(c ProxyConfig) string {
	write := func(name, content string) string {
		p := filepath.Join(r.Dir, name)
		Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
		return p
	}
	caFile, err := r.CA.WriteFile(r.Dir, "ca")
	Expect(err).NotTo(HaveOccurred())
	client, err := r.CA.Issue("ssh-proxy")
	Expect(err).NotTo(HaveOccurred())
	crt, key, err := client.WriteFiles(r.Dir, "client")
	Expect(err).NotTo(HaveOccurred())
	hostPEM := c.HostKeyPEM
	if hostPEM == "" {
		_, hostPEM = Ed25519Key()
	}
	hostKey := write("host_key", r.secret(hostPEM))

	next := "[]"
	if c.NextHostKeyPEM != "" {
		next = "[" + write("next_host_key", c.NextHostKeyPEM) + "]"
	}
	r.ProxyPort, r.HealthPort = procs.FreePort(), procs.FreePort()
	var b strings.Builder
	if c.DiegoCredentials != "" {
		b.WriteString("enable_diego_auth: true\ndiego_credentials: " + r.secret(c.DiegoCredentials) + "\n")
	} else {
		b.WriteString("enable_diego_auth: false\n")
	}
	b.WriteString("next_host_key_files: " + next + "\n")
	fmt.Fprintf(&b, `address: 127.0.0.1:%d
health_check_address: 127.0.0.1:%d
log_level: debug
host_key_files: [%s]
communication_timeout: %s
enable_cf_auth: %t
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
backends_tls:
  enabled: %t
  ca_cert_files: [%s]
  client_cert_file: %s
  client_key_file: %s
`, r.ProxyPort, r.HealthPort, hostKey, c.CommunicationTimeout, !c.DisableCFAuth, r.UAA.URL(), r.secret(r.Opts.ClientSecret),
		caFile, r.CC.URL()+c.CCPath, caFile, r.BBS.URL(), caFile, crt, key, c.BackendsTLS, caFile, crt, key)
	if c.Metrics {
		r.MetricsPort = procs.FreePort()
		fmt.Fprintf(&b, "metrics:\n  address: 127.0.0.1:%d\n", r.MetricsPort)
	}
	if c.AuditLog {
		r.AuditFile = filepath.Join(r.Dir, "audit.log")
		b.WriteString("audit_log_file: " + r.AuditFile + "\n")
	}
	if c.Loggregator {
		if r.Ingress == nil {
			r.StartIngress()
		}
		fmt.Fprintf(&b, "loggregator:\n  enabled: true\n  address: %s\n  ca_cert_file: %s\n  cert_file: %s\n  key_file: %s\n  instance_id: rig-proxy-0\n",
			r.Ingress.Addr(), caFile, crt, key)
	}
	b.WriteString(c.Extra)
	r.ConfigFile = write("ssh_proxy.yml", b.String())
	return r.ConfigFile
}

// StartProxy writes a config and runs ssh-proxy until its health endpoint answers 200.
func (r *Rig) StartProxy(c ProxyConfig) {
	r.WriteConfig(c)
	r.StartConfigured()
}

// StartConfigured runs ssh-proxy with the config file WriteConfig last wrote until its health
// endpoint answers 200.
func (r *Rig) StartConfigured() {
	var proxy *procs.Process
	audit := r.AuditFile
	if r.Opts.Logs != nil {
		// Registered before the process's stop, so it runs after it (cleanups run last-in
		// first-out) and before the temporary directory goes.
		DeferCleanup(func() {
			logs := []string{proxy.Output()}
			if audit != "" {
				a, _ := os.ReadFile(audit)
				logs = append(logs, string(a))
			}
			r.Opts.Logs(logs...)
		})
	}
	proxy = procs.Start("ssh-proxy", exec.Command(r.Opts.ProxyBin, "-config", r.ConfigFile))
	r.Proxy = proxy.Session
	Eventually(r.HealthStatus, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK))
}

// StartIngress starts the Loggregator agent stand-in with a certificate naming "metron", as
// cf-deployment's agent certificate does.
func (r *Rig) StartIngress() {
	kp, err := r.CA.Issue("metron", "metron")
	Expect(err).NotTo(HaveOccurred())
	r.Ingress = ingressstub.New("127.0.0.1:0", certs.ServerTLS(kp, r.CA.Pool()))
	DeferCleanup(r.Ingress.Close)
}

// Metric is the value of an unlabelled metric on the proxy's metrics endpoint (a config with
// Metrics set), read from the Prometheus text format.
func (r *Rig) Metric(name string) float64 {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.MetricsPort))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			Expect(err).NotTo(HaveOccurred())
			return f
		}
	}
	Fail("no metric " + name + " in:\n" + string(body))
	return 0
}

// HealthStatus is the status code of the proxy's health endpoint.
func (r *Rig) HealthStatus() (int, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", r.HealthPort))
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ProxyLog is everything ssh-proxy logged so far: lager JSON lines on stdout (stderr only
// carries start-up failures, which end the process).
func (r *Rig) ProxyLog() string { return string(r.Proxy.Out.Contents()) }

// LogLines are the lager lines of log whose message is message, each flattened for matching:
// the line's "data" keys beside "message", "log_level", "source" and "timestamp".
func LogLines(log, message string) []map[string]any {
	all, _ := logbuf.LagerLines(log)
	var out []map[string]any
	for _, l := range all {
		if l["message"] == message {
			out = append(out, l)
		}
	}
	return out
}

// AuditEvents are the proxy's audit log lines, decoded (none before the file exists); every
// line must be one JSON object.
func (r *Rig) AuditEvents() []map[string]any {
	b, err := os.ReadFile(r.AuditFile)
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

// OpenFDs counts the proxy process's open file descriptors.
func (r *Rig) OpenFDs() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", r.Proxy.Command.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

// Code is a fresh one-time code from the UAA stand-in.
func (r *Rig) Code() string { return r.secret(r.UAA.IssueCode()) }

// ClientOptions are the OpenSSH options every client uses: password auth only, no host-key
// bookkeeping, one password prompt, no user configuration; bind, when set, is the local
// address to connect from.
func ClientOptions(bind string, connectTimeout int) []string {
	opts := []string{"-F", "/dev/null"}
	if bind != "" {
		opts = append(opts, "-b", bind)
	}
	return append(opts,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout="+strconv.Itoa(connectTimeout),
	)
}

// Result is what one client run printed and its exit code.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// ClientCmd is tool (ssh, scp, sftp) under sshpass with password in its environment.
func ClientCmd(ctx context.Context, password, tool string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sshpass", append([]string{"-e", tool}, args...)...)
	cmd.Env = append(os.Environ(), "SSHPASS="+password)
	return cmd
}

// RunClient runs tool under sshpass with the given password to completion (bounded at 60s)
// and returns its output and exit code.
func RunClient(password string, stdin io.Reader, tool string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := ClientCmd(ctx, password, tool, args...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "running %s: %v", tool, err)
		code = exit.ExitCode()
	}
	Expect(ctx.Err()).NotTo(HaveOccurred(), "%s did not finish: %s", tool, errOut.String())
	return Result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
}

// TLSFront terminates TLS (the container's Envoy) and forwards to the sshd.
type TLSFront struct {
	Port int
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   []net.Conn
}

// StartTLSFront puts a TLS terminator with a certificate for serverName in front of the sshd
// and maps the running instance's TLS proxy port to it.
func (r *Rig) StartTLSFront(serverName string) {
	kp, err := r.CA.Issue(serverName, serverName)
	Expect(err).NotTo(HaveOccurred())
	cfg := certs.ServerTLS(kp, r.CA.Pool())
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	Expect(err).NotTo(HaveOccurred())
	f := &TLSFront{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port}
	upstream := "127.0.0.1:" + strconv.Itoa(r.SSHDPort)
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", upstream, 10*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.cs = append(f.cs, c, up)
			f.mu.Unlock()
			f.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			f.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	DeferCleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.cs {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	r.TLSFront = f
	r.SetRunning(bbs.StateRunning)
}
