package wslisten_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/coder/websocket"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
	"github.com/app-ssh/app-ssh/internal/wsclient"
	"github.com/app-ssh/app-ssh/internal/wslisten"
)

// rig is a listener on loopback with a certificate from a test CA.
type rig struct {
	l      *wslisten.Listener
	caFile string
	tlsCfg *tls.Config
	url    string
}

func newRig(mod func(*wslisten.Config)) *rig {
	dir := GinkgoT().TempDir()
	ca, err := certs.NewCA("wslisten test CA")
	Expect(err).NotTo(HaveOccurred())
	kp, err := ca.Issue("ssh.example.test", "127.0.0.1", "ssh.example.test")
	Expect(err).NotTo(HaveOccurred())
	certFile, keyFile, err := kp.WriteFiles(dir, "ws")
	Expect(err).NotTo(HaveOccurred())
	caFile, err := ca.WriteFile(dir, "ca")
	Expect(err).NotTo(HaveOccurred())
	cfg := wslisten.Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, Logger: nil}
	if mod != nil {
		mod(&cfg)
	}
	l, err := wslisten.Listen(cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(l.Close)
	return &rig{l: l, caFile: caFile, tlsCfg: certs.ClientTLS(ca.Pool(), nil), url: "wss://" + l.Addr().String() + "/"}
}

func (r *rig) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: r.tlsCfg}, Timeout: 10 * time.Second}
}

func (r *rig) dial(header http.Header) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{HTTPClient: r.httpClient(), HTTPHeader: header})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = c.CloseNow() })
	return c
}

// accept returns the next connection or fails after a generous wait.
func (r *rig) accept() net.Conn {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := r.l.Accept(); ch <- res{c, err} }()
	var got res
	Eventually(ch, 10*time.Second).Should(Receive(&got))
	Expect(got.err).NotTo(HaveOccurred())
	DeferCleanup(got.c.Close)
	return got.c
}

// closedWithin reports whether the server ends a raw connection within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	Expect(err).NotTo(HaveOccurred())
	return len(entries)
}

var _ = Describe("Listener", func() {
	It("carries binary messages both ways and reports the TCP peer and transport", func() {
		r := newRig(nil)
		client := r.dial(nil)
		server := r.accept()
		ctx := context.Background()
		Expect(client.Write(ctx, websocket.MessageBinary, []byte("SSH-2.0-test\r\n"))).To(Succeed())
		buf := make([]byte, 64)
		n, err := server.Read(buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(buf[:n])).To(Equal("SSH-2.0-test\r\n"))
		_, err = server.Write([]byte("back"))
		Expect(err).NotTo(HaveOccurred())
		typ, msg, err := client.Read(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(typ).To(Equal(websocket.MessageBinary))
		Expect(string(msg)).To(Equal("back"))

		wc := server.(*wslisten.Conn)
		Expect(wc.Transport()).To(Equal("websocket"))
		Expect(wc.Forwarded()).To(BeFalse())
		Expect(wc.RemoteAddr().String()).To(HavePrefix("127.0.0.1:"))
		Expect(wc.RemoteAddr().String()).To(Equal(wc.Peer().String()))
	})

	It("ends a blocked read at its deadline, closing the connection (the server's grace time relies on it)", func() {
		r := newRig(nil)
		client := r.dial(nil)
		server := r.accept()
		clientErr := make(chan error, 1)
		go func() { _, _, err := client.Read(context.Background()); clientErr <- err }()
		Expect(server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))).To(Succeed())
		start := time.Now()
		_, err := server.Read(make([]byte, 8))
		Expect(err).To(HaveOccurred())
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
		Eventually(clientErr, 10*time.Second).Should(Receive(HaveOccurred()), "the client sees the connection end")
		// A deadline cleared before it fires leaves the connection usable.
		client2 := r.dial(nil)
		server2 := r.accept()
		Expect(server2.SetDeadline(time.Now().Add(100 * time.Millisecond))).To(Succeed())
		Expect(server2.SetDeadline(time.Time{})).To(Succeed())
		time.Sleep(300 * time.Millisecond)
		Expect(client2.Write(context.Background(), websocket.MessageBinary, []byte("ok"))).To(Succeed())
		n, err := server2.Read(make([]byte, 8))
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(2))
	})

	It("answers plain HTTP, wrong paths and wrong methods with clear errors", func() {
		r := newRig(nil)
		hc := r.httpClient()
		base := "https://" + r.l.Addr().String()

		resp, err := hc.Get(base + "/")
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusUpgradeRequired))
		Expect(resp.Header.Get("Upgrade")).To(Equal("websocket"))
		Expect(string(body)).To(ContainSubstring("SSH over WebSocket"))

		resp, err = hc.Get(base + "/elsewhere")
		Expect(err).NotTo(HaveOccurred())
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		Expect(string(body)).To(ContainSubstring("connect to /"))

		req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader("x"))
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err = hc.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusMethodNotAllowed))

		// The WebSocket client reports the refusal too.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, resp, err = websocket.Dial(ctx, "wss://"+r.l.Addr().String()+"/nope", &websocket.DialOptions{HTTPClient: hc})
		Expect(err).To(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
	})

	It("closes a connection that sends a text message, saying why (1003)", func() {
		r := newRig(nil)
		client := r.dial(nil)
		server := r.accept()
		readErr := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, server); readErr <- err }()
		clientErr := make(chan error, 1)
		go func() { _, _, err := client.Read(context.Background()); clientErr <- err }()
		Expect(client.Write(context.Background(), websocket.MessageText, []byte("hello"))).To(Succeed())
		Eventually(readErr, 10*time.Second).Should(Receive(HaveOccurred()))
		var err error
		Eventually(clientErr, 10*time.Second).Should(Receive(&err))
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusUnsupportedData))
		Expect(err.Error()).To(ContainSubstring("expected MessageBinary"))
	})

	It("closes a connection whose message exceeds MaxMessageBytes (1009) and passes one at the limit", func() {
		r := newRig(func(c *wslisten.Config) { c.MaxMessageBytes = 4096 })
		client := r.dial(nil)
		server := r.accept()
		got := make(chan []byte, 1)
		readErr := make(chan error, 1)
		go func() {
			buf := make([]byte, 4096)
			n, err := io.ReadFull(server, buf)
			if err == nil {
				got <- buf[:n]
			}
			_, err = io.Copy(io.Discard, server)
			readErr <- err
		}()
		ctx := context.Background()
		Expect(client.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte("a"), 4096))).To(Succeed())
		Eventually(got, 10*time.Second).Should(Receive(HaveLen(4096)))
		Expect(client.Write(ctx, websocket.MessageBinary, bytes.Repeat([]byte("b"), 4097))).To(Succeed())
		Eventually(readErr, 10*time.Second).Should(Receive(HaveOccurred()))
		_, _, err := client.Read(ctx)
		Expect(websocket.CloseStatus(err)).To(Equal(websocket.StatusMessageTooBig))
	})

	Describe("slow or stalled handshakes", func() {
		const limit = 700 * time.Millisecond

		It("closes a TCP connection that never starts TLS", func() {
			r := newRig(func(c *wslisten.Config) { c.HandshakeTimeout = limit })
			raw, err := net.Dial("tcp", r.l.Addr().String())
			Expect(err).NotTo(HaveOccurred())
			defer raw.Close()
			start := time.Now()
			Expect(closedWithin(raw, 10*time.Second)).To(BeTrue())
			Expect(time.Since(start)).To(BeNumerically(">=", limit/2))
		})

		It("closes a connection whose request headers never end", func() {
			r := newRig(func(c *wslisten.Config) { c.HandshakeTimeout = limit })
			tc, err := tls.Dial("tcp", r.l.Addr().String(), r.tlsCfg)
			Expect(err).NotTo(HaveOccurred())
			defer tc.Close()
			_, err = io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
			Expect(err).NotTo(HaveOccurred())
			Expect(closedWithin(tc, 10*time.Second)).To(BeTrue())
		})

		It("closes an upgraded connection that Accept never takes", func() {
			r := newRig(func(c *wslisten.Config) { c.HandshakeTimeout = limit })
			client := r.dial(nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, _, err := client.Read(ctx)
			Expect(err).To(HaveOccurred())
			Expect(ctx.Err()).NotTo(HaveOccurred(), "closed by the listener, not by the test's timeout")
		})

		It("keeps the handshake deadline off connections handed over to Accept", func() {
			r := newRig(func(c *wslisten.Config) { c.HandshakeTimeout = limit })
			client := r.dial(nil)
			server := r.accept()
			time.Sleep(3 * limit)
			Expect(client.Write(context.Background(), websocket.MessageBinary, []byte("still here"))).To(Succeed())
			buf := make([]byte, 32)
			n, err := server.Read(buf)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(buf[:n])).To(Equal("still here"))
		})

		It("closes the oldest handshake beyond MaxHandshakes, so a client gets through while stalled ones are held", func() {
			logs := &logbuf.Buffer{}
			r := newRig(func(c *wslisten.Config) {
				c.MaxHandshakes = 3
				c.HandshakeTimeout = time.Minute
				c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
			})
			var stalled []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", r.l.Addr().String())
				Expect(err).NotTo(HaveOccurred())
				defer c.Close()
				stalled = append(stalled, c)
				time.Sleep(50 * time.Millisecond) // distinct start times: the first is the oldest
			}
			// A real client: its connection evicts the oldest stalled one and it upgrades.
			client := r.dial(nil)
			server := r.accept()
			Expect(client.Write(context.Background(), websocket.MessageBinary, []byte("through"))).To(Succeed())
			buf := make([]byte, 16)
			n, err := server.Read(buf)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(buf[:n])).To(Equal("through"))
			Expect(closedWithin(stalled[0], 10*time.Second)).To(BeTrue(), "the oldest was closed")
			Expect(closedWithin(stalled[2], 300*time.Millisecond)).To(BeFalse(), "the newest stalled one is still held")

			// A flood: every new connection evicts an older one; the count never exceeds the bound.
			for range 6 {
				c, err := net.Dial("tcp", r.l.Addr().String())
				Expect(err).NotTo(HaveOccurred())
				defer c.Close()
				stalled = append(stalled, c)
			}
			Eventually(func() int {
				held := 0
				for _, c := range stalled {
					if !closedWithin(c, 50*time.Millisecond) {
						held++
					}
				}
				return held
			}, 10*time.Second, 100*time.Millisecond).Should(BeNumerically("<=", 3))
			Expect(strings.Count(logs.String(), "handshakes evicted")).To(Equal(1), "one log line per interval, not one per eviction")
		})
	})

	Describe("X-Forwarded-For", func() {
		header := func(v ...string) http.Header {
			h := http.Header{}
			for _, s := range v {
				h.Add("X-Forwarded-For", s)
			}
			return h
		}
		trustLoopback := func(c *wslisten.Config) { c.TrustedRouters = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }

		It("names the client when the peer is a trusted router", func() {
			r := newRig(trustLoopback)
			r.dial(header("203.0.113.7"))
			c := r.accept().(*wslisten.Conn)
			Expect(c.Forwarded()).To(BeTrue())
			Expect(c.RemoteAddr().(*net.TCPAddr).IP.String()).To(Equal("203.0.113.7"))
			Expect(c.Peer().String()).To(HavePrefix("127.0.0.1:"))
		})

		It("takes the rightmost address that is not a trusted router, across headers", func() {
			r := newRig(trustLoopback)
			r.dial(header("6.6.6.6, 198.51.100.9", "127.0.0.9"))
			c := r.accept().(*wslisten.Conn)
			Expect(c.RemoteAddr().(*net.TCPAddr).IP.String()).To(Equal("198.51.100.9"))
		})

		It("falls back to the peer on an unparsable entry", func() {
			r := newRig(trustLoopback)
			r.dial(header("203.0.113.7, not-an-address"))
			c := r.accept().(*wslisten.Conn)
			Expect(c.Forwarded()).To(BeFalse())
			Expect(c.RemoteAddr().String()).To(HavePrefix("127.0.0.1:"))
		})

		It("is ignored when the peer is not a trusted router", func() {
			r := newRig(func(c *wslisten.Config) { c.TrustedRouters = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
			r.dial(header("203.0.113.7"))
			c := r.accept().(*wslisten.Conn)
			Expect(c.Forwarded()).To(BeFalse())
			Expect(c.RemoteAddr().String()).To(HavePrefix("127.0.0.1:"))
		})

		It("is ignored when no router is trusted", func() {
			r := newRig(nil)
			r.dial(header("203.0.113.7"))
			c := r.accept().(*wslisten.Conn)
			Expect(c.RemoteAddr().String()).To(HavePrefix("127.0.0.1:"))
		})
	})

	It("Close unblocks Accept, closes connections in their handshake and gives back goroutines and descriptors", func() {
		runtime.GC()
		goroutines, fds := runtime.NumGoroutine(), openFDs()

		r := newRig(func(c *wslisten.Config) { c.HandshakeTimeout = time.Minute })
		// A stalled TCP connection, one stalled mid-headers, one upgraded but never accepted.
		raw, err := net.Dial("tcp", r.l.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		tc, err := tls.Dial("tcp", r.l.Addr().String(), r.tlsCfg)
		Expect(err).NotTo(HaveOccurred())
		_, err = io.WriteString(tc, "GET / HTTP/1.1\r\n")
		Expect(err).NotTo(HaveOccurred())
		ctx := context.Background()
		upgraded, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{HTTPClient: r.httpClient()})
		Expect(err).NotTo(HaveOccurred())

		acceptErr := make(chan error, 1)
		go func() {
			// The upgraded connection is waiting: take it, then block on the next Accept.
			c, err := r.l.Accept()
			if err == nil {
				c.Close()
				_, err = r.l.Accept()
			}
			acceptErr <- err
		}()
		time.Sleep(200 * time.Millisecond)
		Expect(r.l.Close()).To(Succeed())
		Eventually(acceptErr, 10*time.Second).Should(Receive(MatchError(net.ErrClosed)))
		Expect(closedWithin(raw, 10*time.Second)).To(BeTrue())
		Expect(closedWithin(tc, 10*time.Second)).To(BeTrue())
		_, _, err = upgraded.Read(ctx)
		Expect(err).To(HaveOccurred())
		raw.Close()
		tc.Close()
		upgraded.CloseNow()
		_, err = net.Dial("tcp", r.l.Addr().String())
		Expect(err).To(HaveOccurred(), "the port is released")

		Eventually(func() int { return runtime.NumGoroutine() }, 10*time.Second).Should(BeNumerically("<=", goroutines))
		Eventually(openFDs, 10*time.Second).Should(BeNumerically("<=", fds))
	})

	It("relays a real SSH handshake and session from the x/crypto client through wsclient", func() {
		r := newRig(nil)
		_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
		hostSigner, err := ssh.NewSignerFromKey(hostPriv)
		Expect(err).NotTo(HaveOccurred())
		serverCfg := &ssh.ServerConfig{PasswordCallback: func(md ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if md.User() == "cf:app/0" && string(pw) == "code" {
				return &ssh.Permissions{Extensions: map[string]string{"remote": md.RemoteAddr().String()}}, nil
			}
			return nil, io.EOF
		}}
		serverCfg.AddHostKey(hostSigner)
		go func() {
			defer GinkgoRecover()
			c, err := r.l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			sc, chans, reqs, err := ssh.NewServerConn(c, serverCfg)
			if err != nil {
				return
			}
			defer sc.Close()
			go ssh.DiscardRequests(reqs)
			for nc := range chans {
				ch, creqs, err := nc.Accept()
				Expect(err).NotTo(HaveOccurred())
				go func() {
					for req := range creqs {
						if req.Type == "exec" {
							_ = req.Reply(true, nil)
							_, _ = io.WriteString(ch, "remote="+sc.Permissions.Extensions["remote"])
							_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
							_ = ch.Close()
						}
					}
				}()
			}
		}()

		sshSide, bridgeSide := net.Pipe()
		runErr := make(chan error, 1)
		go func() {
			runErr <- wsclient.Run(context.Background(), wsclient.Options{URL: r.url, CACertFile: r.caFile}, bridgeSide, bridgeSide)
		}()
		cc, chans, reqs, err := ssh.NewClientConn(sshSide, "ssh.example.test", &ssh.ClientConfig{
			User:            "cf:app/0",
			Auth:            []ssh.AuthMethod{ssh.Password("code")},
			HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey()),
			Timeout:         10 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		client := ssh.NewClient(cc, chans, reqs)
		sess, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := sess.Output("anything")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(HavePrefix("remote=127.0.0.1:"))
		Expect(client.Close()).To(Succeed())
		Eventually(runErr, 15*time.Second).Should(Receive(BeNil()))
	})
})
