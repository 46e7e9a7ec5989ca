package proxy

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/cc"
	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/peer"
	"github.com/app-ssh/app-ssh/internal/server"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
	"github.com/app-ssh/app-ssh/internal/uaa"
)

// logField returns the string field key of the first lager line whose message is msg: the
// message itself for "message", else the key from the line's data.
func logField(log, msg, key string) (string, bool) {
	lines, _ := logbuf.LagerLines(log)
	for _, l := range lines {
		if l["message"] == msg {
			v, ok := l[key].(string)
			return v, ok
		}
	}
	return "", false
}

// newKey returns a fresh ed25519 key as PEM and its public half.
func newKey() ([]byte, ssh.PublicKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	sshPub, err := ssh.NewPublicKey(pub)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(block), sshPub
}

// oneToken is a UAA that trades any code for the same token.
type oneToken struct{}

func (oneToken) ExchangeCode(context.Context, string) (uaa.Token, error) {
	return uaa.Token{AccessToken: "token", UserName: "alice"}, nil
}

var _ = Describe("ccAccess", func() {
	var (
		access ccAccess
		mu     sync.Mutex
		status int
		body   string
	)

	BeforeEach(func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			st, b := status, body
			mu.Unlock()
			w.WriteHeader(st)
			_, _ = io.WriteString(w, b)
		}))
		DeferCleanup(srv.Close)
		c, err := cc.NewClient(cc.Config{InternalURL: srv.URL, Timeout: 5 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		access = ccAccess{c}
	})
	answer := func(st int, b string) {
		mu.Lock()
		defer mu.Unlock()
		status, body = st, b
	}

	It("returns the process guid the Cloud Controller grants", func() {
		answer(200, `{"process_guid":"proc-guid"}`)
		pg, err := access.SSHAccess(context.Background(), "token", "app", 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(pg).To(Equal("proc-guid"))
	})

	// What cloud_controller_ng's AppsSSHController answers, and what a wrong URL gets, each with
	// the reason the user reads. Each reason's blame is declared with it (login's table).
	DescribeTable("maps each Cloud Controller answer to its own reason, keeping the cause",
		func(st int, b string, ccErr, authErr error, reason *login.Reason) {
			answer(st, b)
			_, err := access.SSHAccess(context.Background(), "token", "app", 0)
			Expect(errors.Is(err, ccErr)).To(BeTrue(), "%v", err)
			Expect(errors.Is(err, authErr)).To(BeTrue(), "%v", err)
			cf := &login.Login{CF: &login.CF{UAA: oneToken{}, CC: access}, Resolver: &target.BBSResolver{}}
			_, err = cf.Password(context.Background(), "cf:app/0", []byte("code"))
			Expect(login.RefusalOf(err).Reason).To(BeIdenticalTo(reason))
		},
		Entry("403 CF-NotAuthorized", 403, `{"code":10003,"error_code":"CF-NotAuthorized"}`,
			cc.ErrForbidden, login.ErrNotPermitted, login.ReasonNotPermitted),
		Entry("404 CF-AppNotFound", 404, `{"code":100004,"error_code":"CF-AppNotFound"}`,
			cc.ErrNotFound, login.ErrNoSuchApp, login.ReasonNoSuchApp),
		Entry("400 CF-InvalidRequest (SSH off for app, space or platform)", 400, `{"code":10004,"error_code":"CF-InvalidRequest"}`,
			cc.ErrSSHDisabled, login.ErrSSHDisabled, login.ReasonSSHDisabled),
		Entry("401 CF-InvalidAuthToken (CC rejects the token UAA issued)", 401, `{"code":1000,"error_code":"CF-InvalidAuthToken"}`,
			cc.ErrUnauthenticated, login.ErrTokenRejected, login.ReasonTokenRejected),
		Entry("400 from nginx on the mutual-TLS port 9023 (no client certificate)", 400,
			`<html><head><title>400 No required SSL certificate was sent</title></head></html>`,
			cc.ErrRefused, login.ErrCCMisconfigured, login.ReasonCCMisconfigured),
		Entry("404 without a CC error (a URL that does not route /internal/apps)", 404, `<html>404 Not Found</html>`,
			cc.ErrRefused, login.ErrCCMisconfigured, login.ReasonCCMisconfigured),
		Entry("404 CF-NotFound (CC does not know the route)", 404, `{"code":10000,"error_code":"CF-NotFound"}`,
			cc.ErrRefused, login.ErrCCMisconfigured, login.ReasonCCMisconfigured),
	)

	It("passes an unavailable Cloud Controller through, not as a refusal", func() {
		answer(500, ``)
		_, err := access.SSHAccess(context.Background(), "token", "app", 3)
		Expect(err).To(HaveOccurred())
		for _, m := range ccAnswers {
			Expect(errors.Is(err, m.login)).To(BeFalse())
		}
		var ue *peer.UnavailableError
		Expect(errors.As(err, &ue)).To(BeTrue())
	})
})

var _ = Describe("staticTargets", func() {
	var (
		cfg    *proxyconfig.Config
		keyPEM []byte
		pub    ssh.PublicKey
	)

	BeforeEach(func() {
		keyPEM, pub = newKey()
		cfg = resolvable()
		cfg.StaticTargets = []proxyconfig.StaticTarget{{
			Name: "db", Instances: []string{"127.0.0.1:1001", "127.0.0.1:1002"},
			HostFingerprint: fingerprint.SHA256Base64(pub), PrivateKey: string(keyPEM), User: "admin",
			AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(pub))},
		}}
	})

	It("authorizes the target's keys and resolves its instances", func() {
		st, err := staticTargets(mustResolve(cfg))
		Expect(err).NotTo(HaveOccurred())
		l := &login.Login{Static: st}
		g, err := l.PublicKey(context.Background(), "db/1", pub)
		Expect(err).NotTo(HaveOccurred())
		Expect(g.InstanceGUID).To(Equal("static:db/1"))
		// Nothing listens there: the grant carries the refusal naming the instance's address.
		Expect(g.Refusal).To(MatchError(ContainSubstring("127.0.0.1:1002")))
		_, err = l.PublicKey(context.Background(), "db/2", pub)
		Expect(err).To(HaveOccurred(), "db has two instances")
		_, other := newKey()
		_, err = l.PublicKey(context.Background(), "db/0", other)
		Expect(err).To(HaveOccurred())
	})

	It("accepts the diego credentials as a password only with enable_diego_auth", func() {
		cfg.DiegoCredentials = "sekrit"
		st, err := staticTargets(mustResolve(cfg))
		Expect(err).NotTo(HaveOccurred())
		_, err = (&login.Login{Static: st}).Password(context.Background(), "db/0", []byte("sekrit"))
		Expect(err).To(HaveOccurred())

		r := mustResolve(cfg)
		r.EnableDiegoAuth = true // (a real config also needs the BBS then)
		st, err = staticTargets(r)
		Expect(err).NotTo(HaveOccurred())
		_, err = (&login.Login{Static: st}).Password(context.Background(), "db/0", []byte("sekrit"))
		Expect(err).NotTo(HaveOccurred())
		_, err = (&login.Login{Static: st}).Password(context.Background(), "db/0", []byte("wrong"))
		Expect(err).To(HaveOccurred())
	})
})

var _ = Describe("hardening", func() {
	var (
		cfg    *proxyconfig.Config
		logBuf *logbuf.Buffer
		logger *slog.Logger
	)

	BeforeEach(func() {
		cfg = resolvable()
		logBuf = &logbuf.Buffer{}
		l, err := logging.NewLogger(logBuf, "ssh-proxy", logging.Options{Level: lager.INFO})
		Expect(err).NotTo(HaveOccurred())
		logger = l.Logger
	})

	It("copies the limits into the server config", func() {
		cfg.MaxAuthTries, cfg.MaxConnections, cfg.MaxUnauthenticatedConnections = 3, 7, 2
		cfg.ClientAddressesPreserved = true
		cfg.Keepalive = proxyconfig.Keepalive{Interval: 9 * time.Second, CountMax: 4}
		cfg.ProxyProtocol = proxyconfig.ProxyProtocol{Enabled: true, AllowedCIDRs: []string{"10.0.0.0/8"}}
		var sc server.Config
		closeAll, err := hardening(mustResolve(cfg), &sc, logger)
		Expect(err).NotTo(HaveOccurred())
		closeAll()
		Expect(sc.MaxAuthTries).To(Equal(3))
		Expect(sc.MaxConnections).To(Equal(7))
		Expect(sc.KeepaliveInterval).To(Equal(9 * time.Second))
		Expect(sc.KeepaliveCountMax).To(Equal(4))
		Expect(sc.PreauthIdleTimeout).To(Equal(cfg.PreauthIdleTimeout))
		Expect(sc.DrainTimeout).To(Equal(cfg.DrainTimeout))
		Expect(sc.Penalties).NotTo(BeNil())
		Expect(sc.ClientAddressesPreserved).To(BeTrue())
		Expect(sc.Preauth).NotTo(BeNil())
		for range 3 {
			sc.Preauth.Add(nil)
		}
		Expect(sc.Preauth.Len()).To(Equal(2), "bounded at max_unauthenticated_connections")
		Expect(sc.ProxyProtocol).NotTo(BeNil())
		Expect(sc.Metrics).NotTo(BeNil())
		Expect(sc.Audit).To(BeNil())

		cfg.PerSourcePenalties.Enabled, cfg.ProxyProtocol = false, proxyconfig.ProxyProtocol{}
		sc = server.Config{}
		closeAll, err = hardening(mustResolve(cfg), &sc, logger)
		Expect(err).NotTo(HaveOccurred())
		closeAll()
		Expect(sc.Penalties).To(BeNil())
		Expect(sc.ClientAddressesPreserved).To(BeFalse())
		Expect(sc.ProxyProtocol).To(BeNil())
	})

	It("is given only values the config resolved (a bad one is a config problem naming its key)", func() {
		cfg.ProxyProtocol = proxyconfig.ProxyProtocol{Enabled: true, AllowedCIDRs: []string{"nope"}}
		_, errs := cfg.Resolve()
		Expect(errs).To(ConsistOf(MatchError(HavePrefix("proxy_protocol.allowed_cidrs[0]: "))))
	})

	It("serves metrics and opens the audit log until the returned func closes them", func() {
		cfg.Metrics.Address = "127.0.0.1:0"
		cfg.AuditLogFile = filepath.Join(GinkgoT().TempDir(), "audit", "audit.log")
		var sc server.Config
		closeAll, err := hardening(mustResolve(cfg), &sc, logger)
		Expect(err).NotTo(HaveOccurred())
		addr, ok := logField(logBuf.String(), "ssh-proxy.metrics-listening", "address")
		Expect(ok).To(BeTrue(), logBuf.String())
		Expect(sc.Audit).NotTo(BeNil())
		Expect(cfg.AuditLogFile).To(BeAnExistingFile())

		client := &http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + addr + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		client.CloseIdleConnections()

		closeAll()
		_, err = net.DialTimeout("tcp", addr, 5*time.Second)
		Expect(err).To(HaveOccurred(), "the metrics endpoint is closed")
	})

	It("closes the metrics endpoint when the audit log cannot be opened", func() {
		blocker := filepath.Join(GinkgoT().TempDir(), "file")
		Expect(os.WriteFile(blocker, nil, 0o600)).To(Succeed())
		cfg.Metrics.Address = "127.0.0.1:0"
		cfg.AuditLogFile = filepath.Join(blocker, "audit.log")
		_, err := hardening(mustResolve(cfg), &server.Config{}, logger)
		Expect(err).To(MatchError(HavePrefix("audit_log_file: ")))
		addr, ok := logField(logBuf.String(), "ssh-proxy.metrics-listening", "address")
		Expect(ok).To(BeTrue(), logBuf.String())
		_, err = net.DialTimeout("tcp", addr, 5*time.Second)
		Expect(err).To(HaveOccurred(), "the metrics endpoint is closed")
	})
})

var _ = Describe("Run", func() {
	var cfg *proxyconfig.Resolved

	BeforeEach(func() {
		dir := GinkgoT().TempDir()
		hostKey, hostPub := newKey()
		hostKeyFile := filepath.Join(dir, "host_key")
		Expect(os.WriteFile(hostKeyFile, hostKey, 0o600)).To(Succeed())
		loginKey, pub := newKey()
		c := proxyconfig.Default()
		c.Address = "127.0.0.1:0"
		c.HostKeyFiles = []string{hostKeyFile}
		c.EnableCFAuth = false
		c.StaticTargets = []proxyconfig.StaticTarget{{
			Name: "db", Instances: []string{"127.0.0.1:1001"}, HostFingerprint: ssh.FingerprintSHA256(hostPub),
			PrivateKey: string(loginKey), AuthorizedKeys: []string{string(ssh.MarshalAuthorizedKey(pub))},
		}}
		cfg = mustResolve(&c)
	})

	It("serves SSH until the context ends, logging start and exit", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		logBuf := &logbuf.Buffer{}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, logBuf) }()

		var addr string
		Eventually(func() bool {
			var ok bool
			addr, ok = logField(logBuf.String(), "ssh-proxy.starting", "address")
			return ok
		}, 10*time.Second, 10*time.Millisecond).Should(BeTrue())

		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.SetDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		banner, err := bufio.NewReader(conn).ReadString('\n')
		_ = conn.Close()
		Expect(err).NotTo(HaveOccurred())
		Expect(banner).To(HavePrefix("SSH-2.0-"))

		cancel()
		Eventually(done, 30*time.Second).Should(Receive(BeNil()))
		_, ok := logField(logBuf.String(), "ssh-proxy.exited", "message")
		Expect(ok).To(BeTrue(), logBuf.String())
	})

	It("serves the debug server on debug_address, whose /log-level changes what is logged", func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg.DebugAddress = "127.0.0.1:0"
		logBuf := &logbuf.Buffer{}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, logBuf) }()
		var addr string
		Eventually(func() bool {
			var ok bool
			addr, ok = logField(logBuf.String(), "ssh-proxy.debug-server-listening", "address")
			return ok
		}, 10*time.Second, 10*time.Millisecond).Should(BeTrue())
		Expect(logBuf.String()).NotTo(ContainSubstring("debug-server-not-loopback"))

		resp, err := http.Post("http://"+addr+"/log-level", "text/plain", strings.NewReader("fatal"))
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		resp, err = http.Get("http://" + addr + "/debug/pprof/cmdline")
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		cancel()
		Eventually(done, 30*time.Second).Should(Receive(BeNil()))
		_, exited := logField(logBuf.String(), "ssh-proxy.exited", "message")
		Expect(exited).To(BeFalse(), "info lines still written after /log-level set fatal:\n%s", logBuf.String())
	})

	It("warns when debug_address is not loopback", func() {
		ctx, cancel := context.WithCancel(context.Background())
		cfg.DebugAddress = "0.0.0.0:0"
		logBuf := &logbuf.Buffer{}
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, logBuf) }()
		Eventually(func() bool {
			_, ok := logField(logBuf.String(), "ssh-proxy.debug-server-not-loopback", "debug_address")
			return ok
		}, 10*time.Second, 10*time.Millisecond).Should(BeTrue())
		cancel()
		Eventually(done, 30*time.Second).Should(Receive(BeNil()))
	})

	It("names the config key behind a start-up failure", func() {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		defer taken.Close()
		cfg.Address = taken.Addr().String()
		Expect(Run(context.Background(), cfg, io.Discard)).To(MatchError(HavePrefix("address: ")))
	})
})

// mustResolve resolves c as ssh-proxy does before Run; c must have no problem.
func mustResolve(c *proxyconfig.Config) *proxyconfig.Resolved {
	r, errs := c.Resolve()
	ExpectWithOffset(1, errs).To(BeEmpty())
	return r
}

// resolvable is the defaults with a host key and no login scheme: a config that resolves.
func resolvable() *proxyconfig.Config {
	key, _ := newKey()
	f := filepath.Join(GinkgoT().TempDir(), "host_key")
	Expect(os.WriteFile(f, key, 0o600)).To(Succeed())
	c := proxyconfig.Default()
	c.HostKeyFiles = []string{f}
	c.EnableCFAuth = false
	return &c
}
