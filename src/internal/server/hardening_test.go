package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/server"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

var _ = Describe("Server hardening", func() {
	var (
		sshd       *echoSSHD
		srv        *server.Server
		cfg        server.Config
		logs       *logbuf.Buffer
		cancel     context.CancelFunc
		served     chan error
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		sshd = startEchoSSHD()
		hostKey, _ := newSigner()
		logs = &logbuf.Buffer{}
		logger, err := logging.New(logs, "debug", "ssh-proxy")
		Expect(err).NotTo(HaveOccurred())
		cfg = server.Config{Address: "127.0.0.1:0", HealthAddress: "127.0.0.1:0", HostKeys: []ssh.Signer{hostKey},
			HandshakeTimeout: 20 * time.Second, Logger: logger}
	})

	JustBeforeEach(func() {
		clientKey, _ := newSigner()
		tgt := target.Target{ProcessGUID: "pg-1", Index: 0, InstanceGUID: "inst-1", Address: sshd.ln.Addr().String(),
			Signer: clientKey, HostKey: fingerprint.Compute(fingerprint.SHA256, sshd.host.PublicKey())}
		var err error
		srv, err = server.New(cfg, &login.Login{
			Diego:    &login.Diego{Credentials: []byte("let-me-in")},
			Resolver: staticResolver{t: tgt}, DialTimeout: 5 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		served = make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
	})

	AfterEach(func() {
		cancel()
		Eventually(served, 20*time.Second).Should(Receive(BeNil()))
		sshd.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	login := func() (ssh.Conn, <-chan ssh.NewChannel, <-chan *ssh.Request) {
		c, err := net.Dial("tcp", srv.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		sc, chans, reqs, err := ssh.NewClientConn(c, "proxy", &ssh.ClientConfig{
			User: "diego:pg-1/0", Auth: []ssh.AuthMethod{ssh.Password("let-me-in")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = sc.Close() })
		return sc, chans, reqs
	}
	waitClosed := func(sc ssh.Conn) chan error {
		done := make(chan error, 1)
		go func() { done <- sc.Wait() }()
		return done
	}

	Context("with keepalive", func() {
		BeforeEach(func() {
			cfg.KeepaliveInterval, cfg.KeepaliveCountMax = 100*time.Millisecond, 2
		})

		It("closes a client that stops answering keepalive@openssh.com, keeps one that answers", func() {
			// Answers: x/crypto replies (false) to every server global request it services.
			answering, chans, reqs := login()
			client := ssh.NewClient(answering, chans, reqs)
			Consistently(waitClosed(answering), time.Second).ShouldNot(Receive())
			_ = client

			// Never services its request stream, so never replies.
			silent, _, _ := login()
			Eventually(waitClosed(silent), 10*time.Second).Should(Receive())
			Eventually(logs.String, 5*time.Second).Should(ContainSubstring(`"end_reason":"keepalive unanswered"`))
		})
	})

	Context("with a 2s idle timeout", func() {
		BeforeEach(func() {
			cfg.IdleTimeout = 2 * time.Second
			// The instance's sshd probes every 300 ms; relayed to the client, those probes
			// (and the client's replies) are not traffic the client made.
			sshd.keepalive.Store(int64(300 * time.Millisecond))
		})

		It("keeps a client sending keepalive@cloudfoundry.org every second (as the cf CLI does) and closes a silent one at ~2s", func() {
			alive, chans, reqs := login()
			go ssh.DiscardRequests(reqs)
			go func() {
				for nc := range chans {
					_ = nc.Reject(ssh.Prohibited, "no")
				}
			}()
			aliveClosed := waitClosed(alive)
			stop := make(chan struct{})
			var pinger sync.WaitGroup
			pinger.Go(func() {
				t := time.NewTicker(time.Second)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						_, _, _ = alive.SendRequest("keepalive@cloudfoundry.org", true, nil)
					}
				}
			})
			defer func() { close(stop); pinger.Wait() }()

			silent, schans, sreqs := login()
			go ssh.DiscardRequests(sreqs)
			go func() {
				for nc := range schans {
					_ = nc.Reject(ssh.Prohibited, "no")
				}
			}()
			opened := time.Now()
			Eventually(waitClosed(silent), 10*time.Second).Should(Receive())
			Expect(time.Since(opened)).To(BeNumerically("~", 2*time.Second, 1500*time.Millisecond))
			Eventually(logs.String, 5*time.Second).Should(ContainSubstring(`"end_reason":"idle timeout"`))

			Consistently(aliveClosed, 6*time.Second-time.Since(opened)).ShouldNot(Receive())
		})
	})

	Context("with a maximum connection duration", func() {
		BeforeEach(func() { cfg.MaxConnectionDuration = 1500 * time.Millisecond })

		It("closes a busy session at the limit and tells the user why", func() {
			sc, chans, reqs := login()
			client := ssh.NewClient(sc, chans, reqs)
			s, err := client.NewSession()
			Expect(err).NotTo(HaveOccurred())
			var stderr bytes.Buffer
			s.Stderr = &stderr
			in, err := s.StdinPipe()
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Start("block")).To(Succeed())
			started := time.Now()
			// Keep it busy: activity does not extend the limit.
			stop := make(chan struct{})
			var typer sync.WaitGroup
			typer.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
						if _, err := in.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			})
			Eventually(waitClosed(sc), 10*time.Second).Should(Receive())
			close(stop)
			typer.Wait()
			_ = s.Wait()
			Expect(time.Since(started)).To(BeNumerically(">=", 1400*time.Millisecond))
			Expect(stderr.String()).To(ContainSubstring("maximum connection duration"))
			Eventually(logs.String, 5*time.Second).Should(ContainSubstring(`"end_reason":"max connection duration"`))
		})
	})

	Context("with a bound on unauthenticated connections", func() {
		BeforeEach(func() { cfg.Preauth = limits.NewPreauth(3) })

		It("sheds the silent ones, oldest first, so that a real login gets in", func() {
			var silent []net.Conn
			openSilent := func() {
				c, err := net.Dial("tcp", srv.Addr().String())
				Expect(err).NotTo(HaveOccurred())
				DeferCleanup(c.Close)
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = c.Read(make([]byte, 4)) // the banner: it has been counted
				Expect(err).NotTo(HaveOccurred())
				silent = append(silent, c)
			}
			for range 3 {
				openSilent()
			}
			// Each login arrives over the bound and displaces the oldest silent connection; once
			// authenticated it no longer counts, and another silent one fills the bound again.
			for i := range 2 {
				sc, chans, reqs := login()
				client := ssh.NewClient(sc, chans, reqs)
				s, err := client.NewSession()
				Expect(err).NotTo(HaveOccurred())
				out, err := s.Output("hello")
				Expect(err).NotTo(HaveOccurred())
				Expect(string(out)).To(Equal("hello"))
				_, err = io.ReadAll(silent[i])
				Expect(err).NotTo(HaveOccurred(), "silent connection %d closed by the proxy", i)
				openSilent()
			}
			_ = silent[2].SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, err := io.ReadAll(silent[2])
			Expect(err).To(MatchError(os.ErrDeadlineExceeded), "the youngest silent connection is still open")
			Expect(logs.String()).To(ContainSubstring(`"reason":"unauthenticated_shed"`))
		})
	})

	Context("with a pre-auth idle timeout shorter than the grace time", func() {
		BeforeEach(func() { cfg.PreauthIdleTimeout = 300 * time.Millisecond })

		It("closes a connection that goes silent before authenticating", func() {
			c, err := net.Dial("tcp", srv.Addr().String())
			Expect(err).NotTo(HaveOccurred())
			defer c.Close()
			_, err = io.WriteString(c, "SSH-2.0-silent\r\n")
			Expect(err).NotTo(HaveOccurred())
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err = io.Copy(io.Discard, c)
			Expect(err).NotTo(HaveOccurred(), "closed by the proxy, not by the 15s read deadline (grace is 20s)")
		})
	})

	Context("with a connection cap", func() {
		BeforeEach(func() { cfg.MaxConnections = 1 })

		It("refuses connections beyond it", func() {
			first, err := net.Dial("tcp", srv.Addr().String())
			Expect(err).NotTo(HaveOccurred())
			defer first.Close()
			_ = first.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = first.Read(make([]byte, 4))
			Expect(err).NotTo(HaveOccurred())
			second, err := net.Dial("tcp", srv.Addr().String())
			Expect(err).NotTo(HaveOccurred())
			defer second.Close()
			_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(second)
			Expect(err).NotTo(HaveOccurred())
			Expect(b).To(BeEmpty())
			Expect(logs.String()).To(ContainSubstring(`"reason":"max_connections"`))
		})
	})

	Context("with a drain timeout", func() {
		BeforeEach(func() { cfg.DrainTimeout = 500 * time.Millisecond })

		It("answers 503 while draining and tells open sessions why they close", func() {
			sc, chans, reqs := login()
			client := ssh.NewClient(sc, chans, reqs)
			s, err := client.NewSession()
			Expect(err).NotTo(HaveOccurred())
			var stderr bytes.Buffer
			s.Stderr = &stderr
			_, err = s.StdinPipe()
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Start("block")).To(Succeed())
			Eventually(srv.Sessions, 5*time.Second).Should(Equal(1))
			cancel()
			Eventually(func() int {
				resp, err := http.Get("http://" + srv.HealthAddr().String() + "/")
				if err != nil {
					return 0
				}
				resp.Body.Close()
				return resp.StatusCode
			}, 5*time.Second, 10*time.Millisecond).Should(Equal(http.StatusServiceUnavailable))
			Eventually(waitClosed(sc), 10*time.Second).Should(Receive())
			_ = s.Wait()
			Expect(stderr.String()).To(ContainSubstring("ssh-proxy: this proxy is shutting down"))
			Eventually(served, 10*time.Second).Should(Receive(BeNil()))
			served <- nil
		})
	})
})
