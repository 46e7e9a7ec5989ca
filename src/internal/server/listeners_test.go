package server_test

import (
	"context"
	"net"
	"net/netip"
	"runtime"
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

// carriedConn is a connection another transport handed over (as wslisten's are): it names its
// transport and says whether its RemoteAddr is the client's own, here the address announced.
type carriedConn struct {
	net.Conn
	remote    net.Addr
	forwarded bool
}

func (c *carriedConn) Transport() string    { return "websocket" }
func (c *carriedConn) Forwarded() bool      { return c.forwarded }
func (c *carriedConn) RemoteAddr() net.Addr { return c.remote }

// carrierListener wraps a TCP listener's connections as carriedConns from client.
type carrierListener struct {
	net.Listener
	client    net.Addr
	forwarded bool
}

func (l *carrierListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &carriedConn{Conn: c, remote: l.client, forwarded: l.forwarded}, nil
}

var _ = Describe("Server with more than one listener", func() {
	var (
		sshd       *echoSSHD
		logs       *logbuf.Buffer
		goroutines int
		hostKey    ssh.Signer
		lg         *login.Login
		client     = &net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 0}
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		sshd = startEchoSSHD()
		DeferCleanup(sshd.Close)
		clientKey, _ := newSigner()
		tgt := target.Target{ProcessGUID: "pg-1", Index: 0, InstanceGUID: "inst-1", Address: sshd.ln.Addr().String(),
			Signer: clientKey, HostKey: fingerprint.Compute(fingerprint.SHA256, sshd.host.PublicKey())}
		logs = &logbuf.Buffer{}
		logger, err := logging.New(logs, "debug", "ssh-proxy")
		Expect(err).NotTo(HaveOccurred())
		hostKey, _ = newSigner()
		lg = &login.Login{Diego: &login.Diego{Credentials: []byte("let-me-in")},
			Resolver: staticResolver{t: tgt}, DialTimeout: 5 * time.Second, Logger: logger}
	})

	carrier := func(forwarded bool) *carrierListener {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		return &carrierListener{Listener: tl, client: client, forwarded: forwarded}
	}

	// serve starts Serve and returns a stop func that drains and waits.
	serve := func(srv *server.Server) func() {
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
		return func() {
			cancel()
			Eventually(served, 10*time.Second).Should(Receive(BeNil()))
			sshd.Close()
			Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
		}
	}

	login := func(addr, password string) error {
		c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "diego:pg-1/0", Auth: []ssh.AuthMethod{ssh.Password(password)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := s.Output("hi")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("hi"))
		return nil
	}

	It("serves only the other listeners with DisableTCP, labels their sessions, and closes them on drain", func() {
		ln := carrier(false)
		srv, err := server.New(server.Config{Address: "127.0.0.1:0", DisableTCP: true, Listeners: []net.Listener{ln},
			HostKeys: []ssh.Signer{hostKey}, Logger: lg.Logger}, lg)
		Expect(err).NotTo(HaveOccurred())
		Expect(srv.Addr()).To(BeNil())
		stop := serve(srv)
		addr := ln.Addr().String()
		Expect(login(addr, "let-me-in")).To(Succeed())
		Eventually(func() []map[string]any { return logLines(logs) }, 5*time.Second).Should(ContainElement(And(
			HaveKeyWithValue("message", "ssh-proxy.session-started"), HaveKeyWithValue("transport", "websocket"),
			HaveKeyWithValue("remote_addr", "198.51.100.9:0"))))
		stop()
		_, err = net.DialTimeout("tcp", addr, time.Second)
		Expect(err).To(HaveOccurred(), "the listener was closed on drain")
	})

	It("serves the TCP listener beside them, labelled tcp", func() {
		srv, err := server.New(server.Config{Address: "127.0.0.1:0", Listeners: []net.Listener{carrier(false)},
			HostKeys: []ssh.Signer{hostKey}, Logger: lg.Logger}, lg)
		Expect(err).NotTo(HaveOccurred())
		defer serve(srv)()
		Expect(login(srv.Addr().String(), "let-me-in")).To(Succeed())
		Eventually(func() []map[string]any { return logLines(logs) }, 5*time.Second).Should(ContainElement(And(
			HaveKeyWithValue("message", "ssh-proxy.session-started"), HaveKeyWithValue("transport", "tcp"))))
	})

	It("refuses to start with no listener at all", func() {
		_, err := server.New(server.Config{Address: "127.0.0.1:0", DisableTCP: true, HostKeys: []ssh.Signer{hostKey}}, lg)
		Expect(err).To(MatchError(ContainSubstring("no listener")))
	})

	penalised := func(forwarded bool) bool {
		ln := carrier(forwarded)
		pen := limits.NewPenalties(limits.PenaltyConfig{AuthFail: time.Minute, Min: time.Second, Max: time.Hour,
			Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		srv, err := server.New(server.Config{Address: "127.0.0.1:0", DisableTCP: true, Listeners: []net.Listener{ln},
			HostKeys: []ssh.Signer{hostKey}, Penalties: pen, Logger: lg.Logger}, lg)
		Expect(err).NotTo(HaveOccurred())
		defer serve(srv)()
		Expect(login(ln.Addr().String(), "wrong")).NotTo(Succeed())
		Eventually(logs.String, 5*time.Second).Should(ContainSubstring("ssh-proxy.handshake-failed"))
		return login(ln.Addr().String(), "let-me-in") != nil
	}

	It("penalises a carried connection's client only when its address was forwarded by a trusted router", func() {
		Expect(penalised(true)).To(BeTrue(), "the forwarded client was penalised")
		Expect(logLines(logs)).To(ContainElement(And(HaveKeyWithValue("message", "ssh-proxy.connection-refused"),
			HaveKeyWithValue("reason", "penalty"), HaveKeyWithValue("remote_addr", "198.51.100.9:0"))))
	})

	It("does not penalise a carried connection whose client address is not known", func() {
		Expect(penalised(false)).To(BeFalse())
	})
})
