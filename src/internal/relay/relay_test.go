package relay_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

// dialFailure returns the *relay.DialError err carries.
func dialFailure(err error) *relay.DialError {
	var d *relay.DialError
	ExpectWithOffset(1, errors.As(err, &d)).To(BeTrue(), "%v", err)
	return d
}

// proxyUnderTest accepts client connections without authentication and relays each to tgt.
type proxyUnderTest struct {
	ln      net.Listener
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	relayed chan struct{}
}

func startProxy(tgt func() target.Target) *proxyUnderTest {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	host, _ := newKey()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(host)
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxyUnderTest{ln: ln, cancel: cancel, relayed: make(chan struct{}, 10)}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				b, err := relay.Connect(cctx, tgt(), nil)
				ccancel()
				if err != nil {
					sc.Close()
					return
				}
				relay.Relay(ctx, sc, chans, reqs, b)
				p.relayed <- struct{}{}
			})
		}
	})
	return p
}

func (p *proxyUnderTest) Close() {
	p.ln.Close()
	p.cancel()
	p.wg.Wait()
}

func dialProxy(p *proxyUnderTest) *ssh.Client {
	c, err := ssh.Dial("tcp", p.ln.Addr().String(), &ssh.ClientConfig{
		User: "someone", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
	})
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("Relay", func() {
	var (
		sshd       *fakeSSHD
		proxy      *proxyUnderTest
		client     *ssh.Client
		tgt        target.Target
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		sshd = startFakeSSHD()
		tgt = target.Target{
			ProcessGUID: "pg", Address: sshd.Addr(),
			Signer:  sshd.clientKey,
			HostKey: fingerprint.Compute(fingerprint.SHA256, sshd.hostKey.PublicKey()),
		}
		proxy = startProxy(func() target.Target { return tgt })
		client = dialProxy(proxy)
	})

	AfterEach(func() {
		client.Close()
		proxy.Close()
		sshd.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	run := func(cmd string, stdin io.Reader) (string, string, error) {
		s, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		defer s.Close()
		var out, errOut bytes.Buffer
		s.Stdout, s.Stderr, s.Stdin = &out, &errOut, stdin
		err = s.Run(cmd)
		return out.String(), errOut.String(), err
	}

	It("relays exec output and a zero exit status", func() {
		out, _, err := run("echo hello", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("hello\n"))
		Expect(sshd.users).To(ConsistOf(relay.DefaultUser))
	})

	It("relays stderr and a non-zero exit status", func() {
		out, errOut, err := run("fail 3", nil)
		Expect(out).To(BeEmpty())
		Expect(errOut).To(Equal("failing\n"))
		var exit *ssh.ExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "%v", err)
		Expect(exit.ExitStatus()).To(Equal(3))
	})

	It("relays stdin and its EOF", func() {
		payload := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB, beyond one window
		out, _, err := run("cat", bytes.NewReader(payload))
		Expect(err).NotTo(HaveOccurred())
		Expect([]byte(out)).To(Equal(payload))
	})

	It("relays several sessions at once", func() {
		var wg sync.WaitGroup
		results := make([]string, 4)
		for i := range results {
			wg.Go(func() {
				defer GinkgoRecover()
				out, _, err := run("echo s"+string(rune('a'+i)), nil)
				Expect(err).NotTo(HaveOccurred())
				results[i] = out
			})
		}
		wg.Wait()
		Expect(results).To(Equal([]string{"sa\n", "sb\n", "sc\n", "sd\n"}))
	})

	It("relays global requests with their reply payloads, and refusals", func() {
		ok, payload, err := client.SendRequest("echo-global", true, []byte("ping"))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		Expect(string(payload)).To(Equal("echo:ping"))
		ok, _, err = client.SendRequest("nope@example.com", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
	})

	It("keeps global replies in order while new channels go through", func() {
		type reply struct {
			ok      bool
			payload string
			err     error
		}
		send := func(name, payload string) chan reply {
			ch := make(chan reply, 1)
			go func() {
				ok, p, err := client.SendRequest(name, true, []byte(payload))
				ch <- reply{ok, string(p), err}
			}()
			return ch
		}
		released := false
		release := func() {
			if !released {
				released = true
				close(sshd.release)
			}
		}
		DeferCleanup(release)
		held := send("held-global", "")
		// The backend has not answered the first request: a session still opens and runs.
		out, _, err := run("echo while held", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("while held\n"))
		echo := send("echo-global", "second")
		Consistently(held, 200*time.Millisecond).ShouldNot(Receive())
		release()
		var r reply
		Eventually(held, 5*time.Second).Should(Receive(&r))
		Expect(r).To(Equal(reply{true, "held", nil}))
		Eventually(echo, 5*time.Second).Should(Receive(&r))
		Expect(r).To(Equal(reply{true, "echo:second", nil}))
	})

	It("never passes the backend's host-key announcements to the client", func() {
		nc, err := net.Dial("tcp", proxy.ln.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		conn, chans, reqs, err := ssh.NewClientConn(nc, "proxy", &ssh.ClientConfig{
			User: "raw", HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		go func() {
			for c := range chans {
				_ = c.Reject(ssh.Prohibited, "no")
			}
		}()
		ok, _, err := conn.SendRequest("announce-keys", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		var got *ssh.Request
		Eventually(reqs, 5*time.Second).Should(Receive(&got))
		Expect(got.Type).To(Equal("after-announce"))
	})

	It("passes channel rejections through with reason and message", func() {
		_, _, err := client.OpenChannel("direct-tcpip-ish", nil)
		var oce *ssh.OpenChannelError
		Expect(errors.As(err, &oce)).To(BeTrue(), "%v", err)
		Expect(oce.Reason).To(Equal(ssh.UnknownChannelType))
		Expect(oce.Message).To(Equal("only sessions here: direct-tcpip-ish"))
	})

	It("relays channels the backend opens", func() {
		back := client.HandleChannelOpen("back-channel")
		ok, _, err := client.SendRequest("open-back", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		var nc ssh.NewChannel
		Eventually(back, 5*time.Second).Should(Receive(&nc))
		Expect(string(nc.ExtraData())).To(Equal("extra"))
		ch, reqs, err := nc.Accept()
		Expect(err).NotTo(HaveOccurred())
		go ssh.DiscardRequests(reqs)
		data, err := io.ReadAll(ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal("from the backend"))
		ch.Close()
	})

	It("ends the client connection when the backend goes away", func() {
		s, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Start("sleep")).To(Succeed())
		sshd.Close()
		done := make(chan error, 1)
		go func() { done <- client.Wait() }()
		Eventually(done, 5*time.Second).Should(Receive())
		Eventually(proxy.relayed, 5*time.Second).Should(Receive())
	})

	It("ends the backend connection when the client goes away", func() {
		s, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Start("sleep")).To(Succeed())
		client.Close()
		Eventually(proxy.relayed, 5*time.Second).Should(Receive())
	})
})

var _ = Describe("Connect", func() {
	var (
		sshd       *fakeSSHD
		tgt        target.Target
		goroutines int
	)
	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		sshd = startFakeSSHD()
		tgt = target.Target{
			ProcessGUID: "pg", Address: sshd.Addr(),
			Signer: sshd.clientKey, User: "vcap-user",
			HostKey: fingerprint.Compute(fingerprint.MD5, sshd.hostKey.PublicKey()),
		}
	})
	AfterEach(func() {
		sshd.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})
	connect := func() (*relay.Backend, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return relay.Connect(ctx, tgt, nil)
	}

	It("pins the host key with an MD5 fingerprint and presents the route's user", func() {
		b, err := connect()
		Expect(err).NotTo(HaveOccurred())
		Expect(b.TLS).To(BeFalse())
		b.Close()
		Expect(sshd.users).To(ConsistOf("vcap-user"))
	})

	It("pins the host key with a SHA-256 fingerprint", func() {
		tgt.HostKey = fingerprint.Compute(fingerprint.SHA256, sshd.hostKey.PublicKey())
		b, err := connect()
		Expect(err).NotTo(HaveOccurred())
		b.Close()
		other, _ := newKey()
		tgt.HostKey = fingerprint.Compute(fingerprint.SHA256, other.PublicKey())
		_, err = connect()
		Expect(err).To(MatchError(relay.ErrHostKeyMismatch))
	})

	It("refuses a host key mismatch, and a route with no fingerprint", func() {
		other, _ := newKey()
		tgt.HostKey = fingerprint.Compute(fingerprint.SHA1, other.PublicKey())
		_, err := connect()
		Expect(err).To(MatchError(relay.ErrHostKeyMismatch))
		tgt.HostKey = fingerprint.Fingerprint{}
		_, err = connect()
		Expect(err).To(MatchError(relay.ErrBadTarget))
	})

	It("says the sshd refused the proxy when the key is wrong", func() {
		other, _ := newKey()
		tgt.Signer = other
		_, err := connect()
		Expect(err).To(MatchError(relay.ErrAuthRefused))
	})

	It("says the sshd is unreachable when nothing listens", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		tgt.Address = ln.Addr().String()
		ln.Close()
		_, err = connect()
		d := dialFailure(err)
		Expect(d.TLS).To(BeFalse())
		Expect(d.Timeout).To(BeFalse())
	})

	Context("with TLS to the backend", func() {
		var tlsLn net.Listener
		BeforeEach(func() {
			ca, err := certs.NewCA("backend-ca")
			Expect(err).NotTo(HaveOccurred())
			kp, err := ca.Issue("instance-guid", "instance-guid")
			Expect(err).NotTo(HaveOccurred())
			tlsLn, err = tls.Listen("tcp", "127.0.0.1:0", certs.ServerTLS(kp, nil))
			Expect(err).NotTo(HaveOccurred())
			go func() { // a TLS terminator in front of the fake sshd, one connection at a time
				for {
					c, err := tlsLn.Accept()
					if err != nil {
						return
					}
					up, err := net.Dial("tcp", sshd.Addr())
					if err != nil {
						c.Close()
						continue
					}
					go func() { _, _ = io.Copy(up, c); up.Close() }()
					go func() { _, _ = io.Copy(c, up); c.Close() }()
				}
			}()
			tgt.TLS = &tls.Config{RootCAs: ca.Pool(), ServerName: "instance-guid"}
			tgt.PlaintextAddress = ""
			tgt.Address = tlsLn.Addr().String()
		})
		AfterEach(func() { tlsLn.Close() })

		It("connects through TLS with the instance guid as server name", func() {
			b, err := connect()
			Expect(err).NotTo(HaveOccurred())
			Expect(b.TLS).To(BeTrue())
			b.Close()
		})

		It("refuses when TLS fails, without falling back", func() {
			tgt.TLS.ServerName = "another-instance"
			_, err := connect()
			Expect(dialFailure(err).TLS).To(BeTrue())
		})

		It("falls back to plaintext only when a plaintext address is allowed", func() {
			tgt.TLS.ServerName = "another-instance"
			tgt.PlaintextAddress = sshd.Addr()
			b, err := connect()
			Expect(err).NotTo(HaveOccurred())
			Expect(b.TLS).To(BeFalse())
			b.Close()
		})
	})
})
