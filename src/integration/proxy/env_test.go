package proxy_test

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
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

const (
	appGUID      = "5a1f0c9e-3b7d-4e0a-9c61-2f8e7d6b4a10"
	processGUID  = appGUID + "-0d4e8f2a-6c1b-4f3e-8a7d-9b5c2e1f0a36"
	instanceGUID = "inst-7e2b9c41-aa10"
	containerSSH = 2222
)

// env is one complete deployment on 127.0.0.1: stand-ins, our sshd, and one ssh-proxy.
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

	tlsFront *tlsFront // optional TLS terminator in front of the sshd (backends TLS)

	proxy      *gexec.Session
	proxyPort  int
	healthPort int
	configFile string
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
	e.ca, err = certs.NewCA("integration-ca")
	Expect(err).NotTo(HaveOccurred())
	server, err := e.ca.Issue("127.0.0.1", "127.0.0.1", "localhost")
	Expect(err).NotTo(HaveOccurred())

	e.uaa = uaastub.New("ssh-proxy", "proxy-secret", certs.ServerTLS(server, nil))
	DeferCleanup(e.uaa.Close)
	e.cc = ccstub.New(certs.ServerTLS(server, nil))
	DeferCleanup(e.cc.Close)
	e.cc.SetValidator(func(token string) (string, bool) {
		_, name, ok := e.uaa.ValidateToken(token)
		return name, ok
	})
	e.cc.AddApp(appGUID, processGUID, 2, true)
	e.bbs = bbsstub.New(certs.ServerTLS(server, e.ca.Pool()))
	DeferCleanup(e.bbs.Close)

	e.startSSHD()
	e.setRoute(nil)
	e.setRunning(bbs.StateRunning)
	return e
}

func (e *env) startSSHD() {
	var hostPEM string
	e.sshdHostKey, hostPEM = ed25519Key()
	proxyKey, proxyPEM := ed25519Key()
	e.proxyKeyPEM = proxyPEM
	e.sshdPort = freePort()
	cmd := exec.Command(sshdBin,
		"-address", "127.0.0.1:"+strconv.Itoa(e.sshdPort),
		"-hostKey", hostPEM,
		"-authorizedKey", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(proxyKey.PublicKey()))),
	)
	cmd.Dir = e.dir
	var err error
	e.sshd, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { e.sshd.Kill().Wait(10 * time.Second) })
	waitForPort(e.sshdPort)
}

// setRoute stores the desired LRP with a diego-ssh route pinning the sshd's host key; edit
// may change the route first.
func (e *env) setRoute(edit func(r map[string]any)) {
	r := map[string]any{
		"container_port":       containerSSH,
		"private_key":          e.proxyKeyPEM,
		"host_fingerprint":     fingerprint.MD5Hex(e.sshdHostKey.PublicKey()),
		"host_256_fingerprint": fingerprint.SHA256Base64(e.sshdHostKey.PublicKey()),
	}
	if edit != nil {
		edit(r)
	}
	raw, err := json.Marshal(r)
	Expect(err).NotTo(HaveOccurred())
	e.bbs.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: processGUID, Routes: map[string][]byte{
		"cf-router": []byte(`[{"hostnames":["app.example.com"],"port":8080}]`),
		"diego-ssh": raw,
	}})
}

// setRunning stores index 0 in the given state, mapped to the sshd (and TLS front, if any).
func (e *env) setRunning(state string) {
	pm := bbs.PortMapping{ContainerPort: containerSSH, HostPort: uint32(e.sshdPort)}
	if e.tlsFront != nil {
		pm.HostTLSProxyPort = uint32(e.tlsFront.port)
	}
	e.bbs.SetActualLRPs(processGUID, bbs.ActualLRP{
		ProcessGUID: processGUID, Index: 0, InstanceGUID: instanceGUID, CellID: "cell-z1-0",
		State: state, Address: "127.0.0.1", InstanceAddress: "10.255.0.7",
		PreferredAddress: bbs.PreferredAddressHost,
		Ports:            []bbs.PortMapping{{ContainerPort: 8080, HostPort: 1}, pm},
	})
}

type proxyOpts struct {
	backendsTLS bool
	// nextHostKeyPEM, when set, is configured as next_host_key_files[0].
	nextHostKeyPEM string
	// diegoCredentials, when set, turns on diego authentication with this secret.
	diegoCredentials string
}

func (e *env) writeConfig(o proxyOpts) string {
	write := func(name, content string) string {
		p := filepath.Join(e.dir, name)
		Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
		return p
	}
	caFile, err := e.ca.WriteFile(e.dir, "ca")
	Expect(err).NotTo(HaveOccurred())
	client, err := e.ca.Issue("ssh-proxy")
	Expect(err).NotTo(HaveOccurred())
	crt, key, err := client.WriteFiles(e.dir, "client")
	Expect(err).NotTo(HaveOccurred())
	_, hostPEM := ed25519Key()
	hostKey := write("host_key", hostPEM)

	next := "[]"
	if o.nextHostKeyPEM != "" {
		next = "[" + write("next_host_key", o.nextHostKeyPEM) + "]"
	}
	e.proxyPort, e.healthPort = freePort(), freePort()
	diego := "enable_diego_auth: false\n"
	if o.diegoCredentials != "" {
		diego = "enable_diego_auth: true\ndiego_credentials: " + o.diegoCredentials + "\n"
	}
	cfg := diego + "next_host_key_files: " + next + "\n" + fmt.Sprintf(`address: 127.0.0.1:%d
health_check_address: 127.0.0.1:%d
log_level: debug
host_key_files: [%s]
communication_timeout: 5s
enable_cf_auth: true
uaa:
  token_url: %s
  client_id: ssh-proxy
  client_secret: proxy-secret
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
`, e.proxyPort, e.healthPort, hostKey, e.uaa.URL(), caFile, e.cc.URL(), caFile,
		e.bbs.URL(), caFile, crt, key, o.backendsTLS, caFile, crt, key)
	e.configFile = write("ssh_proxy.yml", cfg)
	return e.configFile
}

func (e *env) startProxy(o proxyOpts) {
	e.writeConfig(o)
	var err error
	e.proxy, err = gexec.Start(exec.Command(proxyBin, "-config", e.configFile), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { e.proxy.Kill().Wait(10 * time.Second) })
	Eventually(func() (int, error) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", e.healthPort))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK))
}

// proxyLog is everything ssh-proxy logged so far (JSON lines on stderr).
func (e *env) proxyLog() string { return string(e.proxy.Err.Contents()) }

func (e *env) user() string { return "cf:" + appGUID + "/0" }

// clientOpts are the OpenSSH options every client uses: password auth only, no host-key
// bookkeeping, one password prompt, no user configuration.
func (e *env) clientOpts() []string {
	return []string{
		"-F", "/dev/null",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no",
		"-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=10",
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// runClient runs tool (ssh, scp, sftp) under sshpass with a fresh one-time code (or the given
// password) and returns its output and exit code.
func runClient(password string, stdin io.Reader, tool string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sshpass", append([]string{"-e", tool}, args...)...)
	cmd.Env = append(os.Environ(), "SSHPASS="+password)
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
	return result{stdout: out.String(), stderr: errOut.String(), code: code}
}

func (e *env) ssh(code string, stdin io.Reader, args ...string) result {
	full := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), e.user()+"@127.0.0.1")
	return runClient(code, stdin, "ssh", append(full, args...)...)
}

func (e *env) code() string { return e.uaa.IssueCode() }

// openFDs counts the proxy process's open file descriptors.
func (e *env) openFDs() int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.proxy.Command.Process.Pid))
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

func (e *env) terminateProxy() {
	Expect(e.proxy.Command.Process.Signal(syscall.SIGTERM)).To(Succeed())
}

// tlsFront terminates TLS (the container's Envoy) and forwards to the sshd.
type tlsFront struct {
	ln   net.Listener
	port int
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   []net.Conn
}

func (e *env) startTLSFront(serverName string) {
	kp, err := e.ca.Issue(serverName, serverName)
	Expect(err).NotTo(HaveOccurred())
	cfg := certs.ServerTLS(kp, e.ca.Pool())
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	Expect(err).NotTo(HaveOccurred())
	f := &tlsFront{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	upstream := "127.0.0.1:" + strconv.Itoa(e.sshdPort)
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
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
	e.tlsFront = f
	e.setRunning(bbs.StateRunning)
}

func ssh256(s ssh.Signer) string { return fingerprint.SHA256Base64(s.PublicKey()) }
