package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

const (
	appGUID      = "5a1f0c9e-3b7d-4e0a-9c61-2f8e7d6b4a10"
	processGUID  = appGUID + "-0d4e8f2a-6c1b-4f3e-8a7d-9b5c2e1f0a36"
	instanceGUID = "inst-7e2b9c41-aa10"
)

// env is one complete deployment on 127.0.0.1 (see proxyrig), with the names the specs use.
type env struct {
	rig *proxyrig.Rig

	uaa *uaastub.Server
	cc  *ccstub.Server
	bbs *bbsstub.Server

	sshd        *gexec.Session
	sshdHostKey ssh.Signer

	proxy     *gexec.Session
	proxyPort int
	// startOpts are what a refusal case starts the proxy with (its setup may add to them).
	startOpts proxyOpts
}

var (
	freePort   = procs.FreePort
	ed25519Key = proxyrig.Ed25519Key
)

func newEnv() *env {
	r := proxyrig.New(proxyrig.Options{
		ProxyBin: proxyBin, SSHDBin: sshdBin,
		CAName: "integration-ca", ClientSecret: "proxy-secret",
		AppGUID: appGUID, ProcessGUID: processGUID, InstanceGUID: instanceGUID, Instances: 2,
		CellID: "cell-z1-0", InstanceAddress: "10.255.0.7", WithAppRoute: true,
		// Cloud Controller's tags for a process (source_id is the app guid; the log_guid too).
		LogGUID: appGUID,
		MetricTags: map[string]bbs.MetricTagValue{
			"source_id": {Static: appGUID}, "app_id": {Static: appGUID}, "app_name": {Static: "dora"},
			"process_type": {Static: "web"}, "instance_id": {Dynamic: bbs.MetricTagIndex},
			"process_instance_id": {Dynamic: bbs.MetricTagInstanceGUID},
		},
	})
	return &env{rig: r, uaa: r.UAA, cc: r.CC, bbs: r.BBS, sshd: r.SSHD, sshdHostKey: r.SSHDHostKey}
}

// setRoute stores the desired LRP with a diego-ssh route pinning the sshd's host key; edit
// may change the route first.
func (e *env) setRoute(edit func(r map[string]any)) { e.rig.SetRoute(edit) }

// setRunning stores index 0 in the given state, mapped to the sshd (and TLS front, if any).
func (e *env) setRunning(state string) { e.rig.SetRunning(state) }

type proxyOpts struct {
	backendsTLS bool
	// nextHostKeyPEM, when set, is configured as next_host_key_files[0].
	nextHostKeyPEM string
	// diegoCredentials, when set, turns on diego authentication with this secret.
	diegoCredentials string
	// loggregator sends to the rig's ingress stand-in; metrics opens the metrics endpoint.
	loggregator, metrics bool
	// auditLog writes the audit log (rig.AuditFile).
	auditLog bool
	// disableCF turns cf authentication off; ccPath is appended to cc.internal_url.
	disableCF bool
	ccPath    string
	// extra is appended to the config file.
	extra string
}

func (e *env) writeConfig(o proxyOpts) string {
	file := e.rig.WriteConfig(proxyrig.ProxyConfig{
		CommunicationTimeout: "5s", BackendsTLS: o.backendsTLS,
		NextHostKeyPEM: o.nextHostKeyPEM, DiegoCredentials: o.diegoCredentials,
		Loggregator: o.loggregator, Metrics: o.metrics, AuditLog: o.auditLog,
		DisableCFAuth: o.disableCF, CCPath: o.ccPath, Extra: o.extra,
	})
	e.proxyPort = e.rig.ProxyPort
	return file
}

func (e *env) startProxy(o proxyOpts) {
	e.writeConfig(o)
	e.rig.StartConfigured()
	e.proxy = e.rig.Proxy
}

// proxyLog is everything ssh-proxy logged so far (JSON lines on stderr).
func (e *env) proxyLog() string { return e.rig.ProxyLog() }

func (e *env) user() string { return "cf:" + appGUID + "/0" }

// clientOpts are the OpenSSH options every client uses: password auth only, no host-key
// bookkeeping, one password prompt, no user configuration.
func (e *env) clientOpts() []string { return proxyrig.ClientOptions("", 10) }

type result struct {
	stdout, stderr string
	code           int
}

// runClient runs tool (ssh, scp, sftp) under sshpass with a fresh one-time code (or the given
// password) and returns its output and exit code.
func runClient(password string, stdin io.Reader, tool string, args ...string) result {
	r := proxyrig.RunClient(password, stdin, tool, args...)
	return result{stdout: r.Stdout, stderr: r.Stderr, code: r.Code}
}

func (e *env) ssh(code string, stdin io.Reader, args ...string) result {
	full := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), e.user()+"@127.0.0.1")
	return runClient(code, stdin, "ssh", append(full, args...)...)
}

func (e *env) code() string { return e.rig.Code() }

// openFDs counts the proxy process's open file descriptors.
func (e *env) openFDs() int { return e.rig.OpenFDs() }

func (e *env) terminateProxy() {
	Expect(e.proxy.Command.Process.Signal(syscall.SIGTERM)).To(Succeed())
}

// startTLSFront puts a TLS terminator (the container's Envoy) in front of the sshd.
func (e *env) startTLSFront(serverName string) { e.rig.StartTLSFront(serverName) }

func ssh256(s ssh.Signer) string { return fingerprint.SHA256Base64(s.PublicKey()) }

// expectTunnel serves greeting over HTTP on 127.0.0.1, opens `ssh -N <flag>
// 127.0.0.1:PORT:<server>` through the proxy (flag -L or -R) and expects the greeting at
// 127.0.0.1:PORT: on the client's side for -L, on the container's side for -R (which is this
// machine too).
func (e *env) expectTunnel(flag, greeting string) {
	GinkgoHelper()
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, greeting)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	go func() { _ = web.Serve(ln) }()
	DeferCleanup(web.Close)

	port := freePort()
	args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), "-N", "-o", "ExitOnForwardFailure=yes",
		flag, fmt.Sprintf("127.0.0.1:%d:%s", port, ln.Addr().String()), e.user()+"@127.0.0.1")
	cmd := exec.Command("sshpass", append([]string{"-e", "ssh"}, args...)...)
	cmd.Env = append(os.Environ(), "SSHPASS="+e.code())
	tunnel, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { tunnel.Terminate().Wait(10 * time.Second) })

	Eventually(func() (string, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}, 20*time.Second, 100*time.Millisecond).Should(Equal(greeting))
}
