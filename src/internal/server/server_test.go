package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/server"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

func newSigner() (ssh.Signer, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	b, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return s, string(pem.EncodeToMemory(b))
}

// echoSSHD answers "exec" with the command's text and exit status 0, for any client key. With
// keepalive set (nanoseconds), it sends keepalive@openssh.com to the proxy that often, as an
// sshd with ClientAliveInterval does.
type echoSSHD struct {
	ln        net.Listener
	host      ssh.Signer
	keepalive atomic.Int64
	wg        sync.WaitGroup
	mu        sync.Mutex
	cs        []net.Conn
}

func startEchoSSHD() *echoSSHD {
	host, _ := newSigner()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	e := &echoSSHD{ln: ln, host: host}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	cfg.AddHostKey(host)
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.cs = append(e.cs, c)
			e.mu.Unlock()
			e.wg.Go(func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				if every := time.Duration(e.keepalive.Load()); every > 0 {
					e.wg.Go(func() {
						for {
							time.Sleep(every)
							if _, _, err := sc.SendRequest("keepalive@openssh.com", true, nil); err != nil {
								return
							}
						}
					})
				}
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						continue
					}
					e.wg.Go(func() {
						defer ch.Close()
						for req := range creqs {
							if req.Type != "exec" {
								_ = req.Reply(false, nil)
								continue
							}
							_ = req.Reply(true, nil)
							n := binary.BigEndian.Uint32(req.Payload)
							cmd := string(req.Payload[4 : 4+n])
							if cmd == "block" {
								_, _ = io.Copy(io.Discard, ch)
							}
							_, _ = ch.Write([]byte(cmd))
							_, _ = ch.SendRequest("exit-status", false, []byte{0, 0, 0, 0})
							return
						}
					})
				}
			})
		}
	})
	return e
}

func (e *echoSSHD) Close() {
	e.ln.Close()
	e.mu.Lock()
	for _, c := range e.cs {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

type staticResolver struct{ t target.Target }

func (r staticResolver) Resolve(_ context.Context, pg string, idx int) (target.Target, error) {
	if pg != r.t.ProcessGUID || idx != r.t.Index {
		return target.Target{}, &target.InstanceError{Index: idx, Instances: 1}
	}
	return r.t, nil
}

// logLines is every lager line the server logged, flattened; each line must be one.
func logLines(b *logbuf.Buffer) []map[string]any {
	lines, bad := logbuf.LagerLines(b.String())
	Expect(bad).To(BeEmpty(), "not lager lines")
	return lines
}

var _ = Describe("Server", func() {
	var (
		sshd       *echoSSHD
		srv        *server.Server
		logs       *logbuf.Buffer
		cancel     context.CancelFunc
		served     chan error
		goroutines int
		idle       time.Duration
		tgt        target.Target
	)

	BeforeEach(func() {
		idle = 0
		goroutines = runtime.NumGoroutine()
		sshd = startEchoSSHD()
		clientKey, _ := newSigner()
		tgt = target.Target{ProcessGUID: "pg-1", Index: 0, InstanceGUID: "inst-1", Address: sshd.ln.Addr().String(),
			Signer: clientKey, HostKey: fingerprint.Compute(fingerprint.SHA256, sshd.host.PublicKey())}
	})

	JustBeforeEach(func() {
		logs = &logbuf.Buffer{}
		logger, err := logging.New(logs, "debug", "ssh-proxy")
		Expect(err).NotTo(HaveOccurred())
		hostKey, _ := newSigner()
		srv, err = server.New(server.Config{
			Address: "127.0.0.1:0", HealthAddress: "127.0.0.1:0", HostKeys: []ssh.Signer{hostKey},
			HandshakeTimeout: 2 * time.Second, IdleTimeout: idle, Logger: logger,
		}, &login.Login{
			Diego:    &login.Diego{Credentials: []byte("let-me-in")},
			Resolver: staticResolver{t: tgt}, DialTimeout: 5 * time.Second, Logger: logger,
		})
		Expect(err).NotTo(HaveOccurred())
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		served = make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
	})

	AfterEach(func() {
		cancel()
		Eventually(served, 10*time.Second).Should(Receive(BeNil()))
		sshd.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	dial := func(user, password string) (*ssh.Client, string, error) {
		var banner logbuf.Buffer
		c, err := ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{
			User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
			BannerCallback: func(m string) error { _, _ = banner.Write([]byte(m)); return nil },
		})
		return c, banner.String(), err
	}

	It("relays an authenticated session and logs who and where", func() {
		c, banner, err := dial("diego:pg-1/0", "let-me-in")
		Expect(err).NotTo(HaveOccurred())
		Expect(banner).To(BeEmpty())
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := s.Output("hello there")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("hello there"))
		c.Close()
		Eventually(logs.String, 5*time.Second).Should(ContainSubstring("ssh-proxy.session-ended"))
		var started map[string]any
		for _, l := range logLines(logs) {
			if l["message"] == "ssh-proxy.session-started" {
				started = l
			}
		}
		Expect(started).To(HaveKeyWithValue("process_guid", "pg-1"))
		Expect(started).To(HaveKeyWithValue("index", BeNumerically("==", 0)))
		Expect(started).To(HaveKeyWithValue("instance_guid", "inst-1"))
		Expect(started).To(HaveKeyWithValue("user", "diego"))
		Expect(started).To(HaveKey("app_guid"))
		Expect(started).To(HaveKeyWithValue("remote_addr", HavePrefix("127.0.0.1:")))
		Expect(logs.String()).NotTo(ContainSubstring("let-me-in"))
		Expect(logs.String()).NotTo(ContainSubstring("PRIVATE KEY"))
	})

	It("shows an authentication refusal's reason as the banner and logs it without the password", func() {
		_, banner, err := dial("diego:pg-1/0", "wrong-secret")
		Expect(err).To(HaveOccurred())
		Expect(banner).To(Equal("ssh-proxy: " + login.ReasonInvalidCredential.Text() + "\n"))
		_, banner, err = dial("cf:app/0", "code")
		Expect(err).To(HaveOccurred())
		Expect(banner).To(ContainSubstring(login.ReasonSchemeDisabled.Text()))
		Expect(logs.String()).To(ContainSubstring(`"reason":"` + login.ReasonInvalidCredential.Text() + `"`))
		Expect(logs.String()).To(ContainSubstring(`"blame":"client"`))
		Expect(logs.String()).To(ContainSubstring(`"reason_code":"invalid-credential"`))
		Expect(logs.String()).NotTo(ContainSubstring("wrong-secret"))
	})

	// A permitted user whose instance cannot be reached: authentication succeeds, every channel
	// open is rejected with the reason, global requests are refused, the connection then closes.
	expectChannelRefusal := func(user, reason string) {
		GinkgoHelper()
		c, banner, err := dial(user, "let-me-in")
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		Expect(banner).To(BeEmpty())
		ok, _, err := c.SendRequest("tcpip-forward", true, ssh.Marshal(struct {
			Addr string
			Port uint32
		}{"127.0.0.1", 0}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
		_, err = c.NewSession()
		var oce *ssh.OpenChannelError
		Expect(errors.As(err, &oce)).To(BeTrue(), "%v", err)
		Expect(oce.Reason).To(Equal(ssh.ConnectionFailed))
		Expect(oce.Message).To(Equal(reason))
		Expect(err.Error()).To(Equal(`ssh: rejected: connect failed ("` + reason + `")`))
		closed := make(chan error, 1)
		go func() { closed <- c.Wait() }()
		Eventually(closed, 2*server.RefusalCloseDelay+5*time.Second).Should(Receive())
		Eventually(logs.String, 5*time.Second).Should(ContainSubstring("ssh-proxy.session-refused"))
		Expect(logs.String()).NotTo(ContainSubstring("ssh-proxy.session-started"))
		Expect(logs.String()).To(ContainSubstring(`"reason":"` + reason + `"`))
	}

	It("rejects the channels of a permitted user whose instance does not exist, with the reason", func() {
		expectChannelRefusal("diego:pg-1/3", "instance 3 of app pg-1 does not exist (1 instances)")
	})

	It("rejects the channels with the reason when the instance's sshd cannot be reached", func() {
		sshd.Close()
		expectChannelRefusal("diego:pg-1/0", login.ReasonBackendDown.Text())
	})

	It("serves health 200 while listening", func() {
		resp, err := http.Get("http://" + srv.HealthAddr().String() + "/")
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		cancel()
		Eventually(served, 10*time.Second).Should(Receive(BeNil()))
		served <- nil // for AfterEach
		_, err = http.Get("http://" + srv.HealthAddr().String() + "/")
		Expect(err).To(HaveOccurred())
		_, err = net.Dial("tcp", srv.Addr().String())
		Expect(err).To(HaveOccurred())
	})

	It("drops connections that do not finish the handshake in time", func() {
		c, err := net.Dial("tcp", srv.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		Expect(c.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		_, err = io.ReadAll(c) // server version line, then EOF when the deadline hits
		Expect(err).NotTo(HaveOccurred())
	})

	Context("with an idle timeout", func() {
		BeforeEach(func() { idle = 2 * time.Second })

		It("closes a connection that stays silent, but not a busy one", func() {
			c, _, err := dial("diego:pg-1/0", "let-me-in")
			Expect(err).NotTo(HaveOccurred())
			defer c.Close()
			s, err := c.NewSession()
			Expect(err).NotTo(HaveOccurred())
			stdin, err := s.StdinPipe()
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Start("block")).To(Succeed())
			// Busy: keep writing for several idle periods; the connection must survive.
			for range 10 {
				_, err := stdin.Write([]byte("tick"))
				Expect(err).NotTo(HaveOccurred())
				time.Sleep(200 * time.Millisecond)
			}
			// Silent: the proxy drops the connection.
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			Eventually(done, 10*time.Second).Should(Receive())
		})
	})

	It("closes open sessions when stopped", func() {
		c, _, err := dial("diego:pg-1/0", "let-me-in")
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Start("block")).To(Succeed())
		cancel()
		Eventually(served, 10*time.Second).Should(Receive(BeNil()))
		served <- nil
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		Eventually(done, 5*time.Second).Should(Receive())
	})
})
