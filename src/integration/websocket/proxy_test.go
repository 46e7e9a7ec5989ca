package websocket_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/wslisten"
)

const (
	wsAppGUID      = "7b2e4c1a-9d3f-4a6b-8e0c-1f5a7d9b3c2e"
	wsProcessGUID  = wsAppGUID + "-4c8a2e6f-1b3d-4f5a-9e7c-0d2b4f6a8c1e"
	wsInstanceGUID = "instance-ws-0"
	cfUser         = "cf:" + wsAppGUID + "/0"
)

// wsProxy is the real ssh-proxy (proxyrig: UAA, Cloud Controller and BBS stand-ins, our sshd)
// with its WebSocket listener on, a static target "db" at the same sshd, the audit log and
// the metrics endpoint.
type wsProxy struct {
	rig       *proxyrig.Rig
	caFile    string
	wsAddr    string
	url       string
	aliceFile string // OpenSSH private key authorized for the static target
}

type wsProxyOpts struct {
	trusted    []string // ws.trusted_router_cidrs
	disableTCP bool
	extra      string
}

func startWSProxy(o wsProxyOpts) *wsProxy {
	rig := proxyrig.New(proxyrig.Options{ProxyBin: proxyBin, SSHDBin: sshdBin, CAName: "websocket proxy CA",
		ClientSecret: "ws-client-secret", AppGUID: wsAppGUID, ProcessGUID: wsProcessGUID, InstanceGUID: wsInstanceGUID,
		Instances: 1, CellID: "cell-ws", InstanceAddress: "127.0.0.1"})
	p := &wsProxy{rig: rig}
	var err error
	p.caFile, err = rig.CA.WriteFile(rig.Dir, "ws-ca")
	Expect(err).NotTo(HaveOccurred())
	kp, err := rig.CA.Issue(serverName, serverName, "127.0.0.1")
	Expect(err).NotTo(HaveOccurred())
	crt, key, err := kp.WriteFiles(rig.Dir, "ws-listener")
	Expect(err).NotTo(HaveOccurred())

	alice, alicePEM := proxyrig.Ed25519Key()
	p.aliceFile = filepath.Join(rig.Dir, "alice")
	Expect(os.WriteFile(p.aliceFile, []byte(alicePEM), 0o600)).To(Succeed())
	loginKey := filepath.Join(rig.Dir, "static_login_key")
	Expect(os.WriteFile(loginKey, []byte(rig.ProxyKeyPEM), 0o600)).To(Succeed())

	p.wsAddr = "127.0.0.1:" + strconv.Itoa(freePort())
	p.url = "wss://" + p.wsAddr + "/"
	trusted := "[]"
	if len(o.trusted) > 0 {
		trusted = "[" + strings.Join(o.trusted, ", ") + "]"
	}
	extra := fmt.Sprintf(`listen_ws_addr: %s
disable_tcp_listener: %t
ws:
  cert_file: %s
  key_file: %s
  trusted_router_cidrs: %s
static_targets:
- name: db
  instances: [127.0.0.1:%d]
  host_fingerprint: %s
  private_key_file: %s
  authorized_keys: ['%s']
`, p.wsAddr, o.disableTCP, crt, key, trusted, rig.SSHDPort, fingerprint.SHA256Base64(rig.SSHDHostKey.PublicKey()), loginKey,
		strings.TrimSpace(string(ssh.MarshalAuthorizedKey(alice.PublicKey()))))
	rig.StartProxy(proxyrig.ProxyConfig{CommunicationTimeout: "10s", AuditLog: true, Metrics: true, Extra: extra + o.extra})
	return p
}

// login is how one OpenSSH tool logs in through app-ssh-ws: a cf one-time code (under
// sshpass) or the static target's key.
type login struct {
	p        *wsProxy
	url      string
	user     string
	password func() string // nil: public key
}

func (p *wsProxy) cf(url string) login {
	return login{p: p, url: url, user: cfUser, password: p.rig.Code}
}

func (p *wsProxy) static(url string) login { return login{p: p, url: url, user: "db/0"} }

func (l login) opts() []string {
	o := []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=30", "-o", "User=" + l.user,
		"-o", "ProxyCommand=" + fmt.Sprintf("%s --ca-cert %s %s", clientPath, l.p.caFile, l.url)}
	if l.password != nil {
		return append(o, "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1")
	}
	return append(o, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "PreferredAuthentications=publickey", "-i", l.p.aliceFile)
}

func (l login) cmd(ctx context.Context, tool string, args ...string) *exec.Cmd {
	all := append(l.opts(), args...)
	if l.password != nil {
		return proxyrig.ClientCmd(ctx, l.password(), tool, all...)
	}
	return exec.CommandContext(ctx, tool, all...)
}

func (l login) run(tool string, args ...string) (string, error) {
	return l.runWith(nil, tool, args...)
}

func (l login) runWith(stdin io.Reader, tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := l.cmd(ctx, tool, args...)
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// proxyTransfers runs ssh, scp, sftp and ssh -L through app-ssh-ws and the proxy.
func proxyTransfers(l login) {
	dir := GinkgoT().TempDir()
	By("ssh runs a command")
	out, err := l.run("ssh", serverName, "echo over-websocket")
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(out).To(ContainSubstring("over-websocket\n"))

	By("scp copies a file up and back")
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	local := filepath.Join(dir, "payload")
	Expect(os.WriteFile(local, payload, 0o600)).To(Succeed())
	remote := filepath.Join(dir, "remote")
	out, err = l.run("scp", local, serverName+":"+remote)
	Expect(err).NotTo(HaveOccurred(), out)
	back := local + ".back"
	out, err = l.run("scp", serverName+":"+remote, back)
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(os.ReadFile(back)).To(Equal(payload))

	By("sftp puts and gets a file")
	sftpBack := local + ".sftp"
	// Commands on stdin, not -b: batch mode would turn password logins off.
	out, err = l.runWith(strings.NewReader(fmt.Sprintf("put %s %s.sftp\nget %s.sftp %s\n", local, remote, remote, sftpBack)), "sftp", serverName)
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(os.ReadFile(sftpBack)).To(Equal(payload))

	By("ssh -L forwards a local port")
	echo := startEcho()
	port := freePort()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess, err := gexec.Start(l.cmd(ctx, "ssh", "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", port, echo), serverName), GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	defer func() { sess.Kill().Wait(10 * time.Second) }()
	Eventually(func() (string, error) {
		if sess.ExitCode() != -1 {
			return "", StopTrying(fmt.Sprintf("ssh -L exited %d: %s", sess.ExitCode(), sess.Err.Contents()))
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			return "", err
		}
		b := make([]byte, 5)
		_, err = io.ReadFull(c, b)
		return string(b), err
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal("ping\n"))
}

// dialWS upgrades a WebSocket to the proxy's listener with extra request headers.
func (p *wsProxy) dialWS(ctx context.Context, header http.Header) (*websocket.Conn, error) {
	ca, err := os.ReadFile(p.caFile)
	Expect(err).NotTo(HaveOccurred())
	pool := certsPool(ca)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}}}
	c, resp, err := websocket.Dial(ctx, p.url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: header})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return c, err
}

// goLogin logs in with a one-time code over a WebSocket carrying header, runs a command and
// closes the connection.
func (p *wsProxy) goLogin(header http.Header) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	ws, err := p.dialWS(ctx, header)
	Expect(err).NotTo(HaveOccurred())
	nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(cmdTimeout))
	sc, chans, reqs, err := ssh.NewClientConn(nc, serverName, &ssh.ClientConfig{User: cfUser,
		Auth: []ssh.AuthMethod{ssh.Password(p.rig.Code())}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: cmdTimeout})
	Expect(err).NotTo(HaveOccurred())
	client := ssh.NewClient(sc, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	Expect(err).NotTo(HaveOccurred())
	out, err := s.CombinedOutput("echo from-go")
	Expect(err).NotTo(HaveOccurred(), string(out))
	Expect(string(out)).To(ContainSubstring("from-go"))
}

// sessionStarts are the proxy's ssh-proxy.session-started log lines.
func (p *wsProxy) sessionStarts() []map[string]any {
	return proxyrig.LogLines(p.rig.ProxyLog(), "ssh-proxy.session-started")
}

var _ = Describe("the ssh-proxy's WebSocket listener", func() {
	It("serves ssh, scp, sftp and ssh -L through app-ssh-ws and nginx (re-encrypting), with cf auth and a static target, like TCP", func() {
		p := startWSProxy(wsProxyOpts{trusted: []string{"127.0.0.0/8"}})
		url := startNginx(p.rig.Dir, p.rig.CA, p.caFile, p.wsAddr)
		proxyTransfers(p.cf(url))
		proxyTransfers(p.static(url))

		starts := p.sessionStarts()
		Expect(starts).NotTo(BeEmpty())
		for _, s := range starts {
			Expect(s).To(HaveKeyWithValue("transport", "websocket"))
		}
		Expect(starts).To(ContainElement(HaveKeyWithValue("scheme", "cf")))
		Expect(starts).To(ContainElement(HaveKeyWithValue("scheme", "static")))
		Expect(p.rig.Metric(`ssh_proxy_transport_connections_total{transport="websocket"}`)).To(BeNumerically(">=", 10))
		Expect(p.rig.Metric(`ssh_proxy_transport_connections_total{transport="tcp"}`)).To(BeZero())
		Eventually(p.rig.AuditEvents, 10*time.Second).Should(ContainElement(HaveKeyWithValue("transport", "websocket")))

		By("the TCP listener serves the same logins, labelled tcp")
		res := proxyrig.RunClient(p.rig.Code(), nil, "ssh", append(proxyrig.ClientOptions("", 30), "-p", strconv.Itoa(p.rig.ProxyPort),
			cfUser+"@127.0.0.1", "echo over-tcp")...)
		Expect(res.Code).To(BeZero(), res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("over-tcp"))
		Expect(p.rig.Metric(`ssh_proxy_transport_connections_total{transport="tcp"}`)).To(Equal(1.0))
		Expect(p.sessionStarts()).To(ContainElement(HaveKeyWithValue("transport", "tcp")))
	})

	It("serves ssh, scp, sftp and ssh -L directly to the listener over TLS", func() {
		p := startWSProxy(wsProxyOpts{})
		proxyTransfers(p.cf(p.url))
		proxyTransfers(p.static(p.url))
	})

	It("in WebSocket-only mode does not listen on the SSH port, and WebSocket works", func() {
		p := startWSProxy(wsProxyOpts{disableTCP: true})
		_, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.rig.ProxyPort), 5*time.Second)
		Expect(err).To(MatchError(ContainSubstring("connection refused")))
		out, err := p.cf(p.url).run("ssh", serverName, "echo ws-only")
		Expect(err).NotTo(HaveOccurred(), out)
		Expect(out).To(ContainSubstring("ws-only"))
		status, err := p.rig.HealthStatus()
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusOK))
	})

	Describe("X-Forwarded-For", func() {
		header := http.Header{"X-Forwarded-For": {"203.0.113.7"}}

		It("names the client when the request comes from a trusted router", func() {
			p := startWSProxy(wsProxyOpts{trusted: []string{"127.0.0.1/32"}})
			p.goLogin(header)
			Expect(p.sessionStarts()).To(ConsistOf(HaveKeyWithValue("remote_addr", HavePrefix("203.0.113.7"))))
			Eventually(p.rig.AuditEvents, 10*time.Second).Should(ContainElement(And(
				HaveKeyWithValue("client_addr", HavePrefix("203.0.113.7")), HaveKeyWithValue("transport", "websocket"))))
		})

		It("is ignored from any other address", func() {
			p := startWSProxy(wsProxyOpts{trusted: []string{"10.9.9.0/24"}})
			p.goLogin(header)
			Expect(p.sessionStarts()).To(ConsistOf(HaveKeyWithValue("remote_addr", HavePrefix("127.0.0.1:"))))
			Eventually(p.rig.AuditEvents, 10*time.Second).Should(ContainElement(HaveKeyWithValue("client_addr", HavePrefix("127.0.0.1:"))))
			Expect(string(must(os.ReadFile(p.rig.AuditFile)))).NotTo(ContainSubstring("203.0.113.7"))
		})
	})

	Describe("bad input", func() {
		var p *wsProxy
		BeforeEach(func() {
			p = startWSProxy(wsProxyOpts{extra: "preauth_idle_timeout: 2s\nhandshake_timeout: 20s\n"})
		})

		It("answers a plain HTTP GET with an HTTP error", func() {
			ca, err := os.ReadFile(p.caFile)
			Expect(err).NotTo(HaveOccurred())
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: certsPool(ca), ServerName: serverName, MinVersion: tls.VersionTLS12}}}
			resp, err := hc.Get("https://" + p.wsAddr + "/")
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusUpgradeRequired))
		})

		It("closes a connection that sends a text frame", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, err := p.dialWS(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			defer ws.CloseNow()
			Expect(ws.Write(ctx, websocket.MessageText, []byte("SSH-2.0-text\r\n"))).To(Succeed())
			Expect(readUntilClosed(ctx, ws)).To(Succeed(), "closed before the deadline")
		})

		It("closes a connection that sends a frame larger than the limit", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, err := p.dialWS(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			defer ws.CloseNow()
			// (Whichever comes first ends it: the message limit, or the SSH server refusing the bytes.)
			_ = ws.Write(ctx, websocket.MessageBinary, make([]byte, wslisten.DefaultMaxMessageBytes+1))
			Expect(readUntilClosed(ctx, ws)).To(Succeed(), "closed before the deadline")
		})

		It("closes an upgrade that never sends SSH bytes after the pre-auth idle timeout", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ws, err := p.dialWS(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			defer ws.CloseNow()
			start := time.Now()
			Expect(readUntilClosed(ctx, ws)).To(Succeed(), "closed before the deadline")
			Expect(time.Since(start)).To(BeNumerically(">=", 1500*time.Millisecond), "not before the pre-auth idle timeout")
		})

		It("lets a real login through promptly during 500 stalled upgrades, and gives every descriptor back", func() {
			l := p.cf(p.url)
			out, err := l.run("ssh", serverName, "echo warm")
			Expect(err).NotTo(HaveOccurred(), out)
			time.Sleep(time.Second)
			before := p.rig.OpenFDs()

			ca, err := os.ReadFile(p.caFile)
			Expect(err).NotTo(HaveOccurred())
			tlsCfg := &tls.Config{RootCAs: certsPool(ca), ServerName: serverName, MinVersion: tls.VersionTLS12}
			var mu sync.Mutex
			var stalled []net.Conn
			var wg sync.WaitGroup
			for w := 0; w < 10; w++ {
				wg.Go(func() {
					for range 50 {
						d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tlsCfg}
						c, err := d.Dial("tcp", p.wsAddr)
						if err != nil {
							continue // evicted over the handshake bound before the TLS handshake ended
						}
						// An upgrade request whose headers never end.
						_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+serverName+"\r\nUpgrade: websocket\r\n")
						mu.Lock()
						stalled = append(stalled, c)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			DeferCleanup(func() {
				for _, c := range stalled {
					c.Close()
				}
			})
			Expect(len(stalled)).To(BeNumerically(">", 100))

			start := time.Now()
			out, err = l.run("ssh", serverName, "echo during-stall")
			took := time.Since(start)
			Expect(err).NotTo(HaveOccurred(), out)
			Expect(out).To(ContainSubstring("during-stall"))
			Expect(took).To(BeNumerically("<", 2*time.Second), "the login took %v", took)

			for _, c := range stalled {
				c.Close()
			}
			Eventually(p.rig.OpenFDs, 30*time.Second, 200*time.Millisecond).Should(BeNumerically("<=", before))
		})
	})
})

func certsPool(pem []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
	return pool
}

// readUntilClosed reads until the server ends the connection (nil) or ctx ends (its error).
func readUntilClosed(ctx context.Context, ws *websocket.Conn) error {
	err := readUntilClosedErr(ctx, ws)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("no error")
	}
	return nil
}

func readUntilClosedErr(ctx context.Context, ws *websocket.Conn) error {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return err
		}
	}
}

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}
