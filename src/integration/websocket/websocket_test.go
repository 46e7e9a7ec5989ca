package websocket_test

import (
	"bufio"
	"crypto/rand"
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
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/app-ssh/app-ssh/internal/wslisten"
)

// transfers runs ssh, scp, sftp and ssh -L through app-ssh-ws against url.
func transfers(r *rig, url string) {
	By("ssh runs a command")
	out, err := r.ssh(url, "echo", "over-websocket")
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(out).To(Equal("over-websocket\n"))

	By("scp copies a file up and back")
	payload := make([]byte, 1<<20)
	_, _ = rand.Read(payload)
	local := filepath.Join(r.dir, "payload")
	Expect(os.WriteFile(local, payload, 0o600)).To(Succeed())
	remote := filepath.Join(r.dir, "remote-"+strconv.Itoa(int(time.Now().UnixNano())))
	out, err = run("scp", append(r.sshOpts(url), local, "root@"+serverName+":"+remote)...)
	Expect(err).NotTo(HaveOccurred(), out)
	back := local + ".back"
	out, err = run("scp", append(r.sshOpts(url), "root@"+serverName+":"+remote, back)...)
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(os.ReadFile(back)).To(Equal(payload))

	By("sftp puts and gets a file")
	batch := filepath.Join(r.dir, "batch")
	sftpRemote := remote + ".sftp"
	sftpBack := local + ".sftp"
	Expect(os.WriteFile(batch, []byte(fmt.Sprintf("put %s %s\nget %s %s\n", local, sftpRemote, sftpRemote, sftpBack)), 0o600)).To(Succeed())
	out, err = run("sftp", append(r.sshOpts(url), "-b", batch, "root@"+serverName)...)
	Expect(err).NotTo(HaveOccurred(), out)
	Expect(os.ReadFile(sftpBack)).To(Equal(payload))

	By("ssh -L forwards a local port")
	echo := startEcho()
	port := freePort()
	cmd := exec.Command("ssh", append(r.sshOpts(url), "-N", "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", port, echo), "root@"+serverName)...)
	sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	defer func() { sess.Kill().Wait(10 * time.Second) }()
	Eventually(func() (string, error) {
		if sess.ExitCode() != -1 {
			return "", StopTrying(fmt.Sprintf("ssh -L exited %d: %s %s", sess.ExitCode(), sess.Err.Contents(), sess.Out.Contents()))
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
		return bufio.NewReader(c).ReadString('\n')
	}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal("ping\n"))
}

// startEcho serves a line echo on loopback until cleanup.
func startEcho() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	DeferCleanup(func() { _ = l.Close(); wg.Wait() })
	return l.Addr().String()
}

var _ = Describe("SSH over WebSocket with OpenSSH and app-ssh-ws", func() {
	It("serves ssh, scp, sftp and ssh -L directly to the listener", func() {
		r := newRig(nil)
		transfers(r, r.url)
		Expect(r.accepted.Load()).To(BeNumerically(">=", 5), "every tool went through the listener")
		Expect(r.forwarded.Load()).To(BeZero())
	})

	It("serves ssh, scp, sftp and ssh -L through nginx terminating TLS and re-encrypting, like gorouter", func() {
		r := newRig(trustLoopback)
		url := r.startNginx()
		transfers(r, url)
		Expect(r.forwarded.Load()).To(Equal(r.accepted.Load()), "nginx's X-Forwarded-For was honoured from the trusted router")
		Expect(r.accepted.Load()).To(BeNumerically(">=", 5))
	})

	Describe("failures: exit 1 with one line naming the URL and the cause", func() {
		var r *rig
		BeforeEach(func() { r = newRig(nil) })

		It("reports a certificate from an unknown authority", func() {
			sess, _ := clientRun(nil, r.url)
			Eventually(sess, cmdTimeout).Should(gexec.Exit(1))
			line := string(sess.Err.Contents())
			Expect(oneLine(line)).To(BeTrue(), line)
			Expect(line).To(ContainSubstring(r.url))
			Expect(line).To(ContainSubstring("certificate signed by unknown authority"))
			Expect(line).To(ContainSubstring("--ca-cert"))
		})

		It("reports the HTTP status when the path is not served", func() {
			url := strings.TrimSuffix(r.url, "/") + "/wrong"
			sess, _ := clientRun(nil, "--ca-cert", r.caFile, url)
			Eventually(sess, cmdTimeout).Should(gexec.Exit(1))
			line := string(sess.Err.Contents())
			Expect(oneLine(line)).To(BeTrue(), line)
			Expect(line).To(ContainSubstring(url))
			Expect(line).To(ContainSubstring("HTTP 404 Not Found"))
		})

		It("reports a refused connection", func() {
			url := "wss://127.0.0.1:" + strconv.Itoa(freePort()) + "/"
			sess, _ := clientRun(nil, "--ca-cert", r.caFile, url)
			Eventually(sess, cmdTimeout).Should(gexec.Exit(1))
			line := string(sess.Err.Contents())
			Expect(oneLine(line)).To(BeTrue(), line)
			Expect(line).To(ContainSubstring(url))
			Expect(line).To(ContainSubstring("connection refused"))
		})

		It("rejects a URL that is not ws:// or wss://", func() {
			sess, _ := clientRun(nil, "https://"+serverName)
			Eventually(sess, cmdTimeout).Should(gexec.Exit(1))
			Expect(string(sess.Err.Contents())).To(ContainSubstring("not a ws:// or wss:// URL"))
		})

		It("makes ssh fail with the client's line when the route is wrong", func() {
			out, err := r.ssh(strings.TrimSuffix(r.url, "/")+"/wrong", "true")
			Expect(err).To(HaveOccurred())
			Expect(out).To(ContainSubstring("app-ssh-ws: " + strings.TrimSuffix(r.url, "/") + "/wrong: HTTP 404"))
		})
	})

	It("exits 0 when the server closes the connection", func() {
		r := newRigNoBridge()
		sess, _ := clientRun(nil, "--ca-cert", r.caFile, r.url)
		c, err := r.l.Accept()
		Expect(err).NotTo(HaveOccurred())
		_, err = c.Write([]byte("bye\n"))
		Expect(err).NotTo(HaveOccurred())
		Eventually(sess.Out, cmdTimeout).Should(gbytes.Say("bye"))
		Expect(c.Close()).To(Succeed())
		Eventually(sess, cmdTimeout).Should(gexec.Exit(0))
	})

	It("sends a normal close when its stdin ends, after delivering what was sent", func() {
		r := newRigNoBridge()
		sess, stdin := clientRun(nil, "--ca-cert", r.caFile, r.url)
		c, err := r.l.Accept()
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		got := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(c); got <- b }()
		_, err = stdin.(io.Writer).Write([]byte("last words"))
		Expect(err).NotTo(HaveOccurred())
		Expect(stdin.Close()).To(Succeed())
		Eventually(got, cmdTimeout).Should(Receive(Equal([]byte("last words"))), "the server read to a clean EOF")
		Eventually(sess, cmdTimeout).Should(gexec.Exit(0))
	})

	It("goes through HTTPS_PROXY with CONNECT", func() {
		r := newRig(nil)
		proxy := startConnectProxy(map[string]string{serverName: "127.0.0.1"})
		_, port, _ := net.SplitHostPort(r.l.Addr().String())
		url := "wss://" + serverName + ":" + port + "/"
		cmd := exec.Command("ssh", append(r.sshOpts(url), "root@"+serverName, "echo", "proxied")...)
		cmd.Env = append(os.Environ(), "HTTPS_PROXY=http://"+proxy.addr, "NO_PROXY=")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(Equal("proxied\n"))
		Expect(proxy.targets()).To(ContainElement(serverName + ":" + port))
	})
})

// newRigNoBridge is a listener whose connections the test takes itself.
func newRigNoBridge() *rig {
	r := &rig{dir: GinkgoT().TempDir()}
	var err error
	r.ca, err = newCA()
	Expect(err).NotTo(HaveOccurred())
	r.caFile, err = r.ca.WriteFile(r.dir, "ca")
	Expect(err).NotTo(HaveOccurred())
	kp, err := r.ca.Issue(serverName, serverName, "127.0.0.1")
	Expect(err).NotTo(HaveOccurred())
	certFile, keyFile, err := kp.WriteFiles(r.dir, "listener")
	Expect(err).NotTo(HaveOccurred())
	r.l, err = wslisten.Listen(wslisten.Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(r.l.Close)
	r.url = "wss://" + r.l.Addr().String() + "/"
	return r
}

// connectProxy is a minimal HTTP CONNECT proxy that records its targets and maps host names.
type connectProxy struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func (p *connectProxy) targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func startConnectProxy(hosts map[string]string) *connectProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p := &connectProxy{addr: l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	keep := func(c ...net.Conn) { mu.Lock(); open = append(open, c...); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			keep(c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect {
					return
				}
				p.mu.Lock()
				p.seen = append(p.seen, req.Host)
				p.mu.Unlock()
				host, port, _ := net.SplitHostPort(req.Host)
				if mapped, ok := hosts[host]; ok {
					host = mapped
				}
				up, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second)
				if err != nil {
					_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
					return
				}
				keep(up)
				defer up.Close()
				_ = c.SetDeadline(time.Time{})
				_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
				done := make(chan struct{})
				go func() { _, _ = io.Copy(up, br); _ = up.Close(); close(done) }()
				_, _ = io.Copy(c, up)
				_ = c.Close()
				<-done
			}()
		}
	}()
	DeferCleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}
