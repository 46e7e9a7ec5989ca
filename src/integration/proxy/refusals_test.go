package proxy_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
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
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

// refusalRow is one row of docs/refusals.md's table.
type refusalRow struct{ code, where, blame, wording string }

// refusalRows parses docs/refusals.md (rows whose first cell is a `code`), so the doc and this
// suite cannot drift apart.
func refusalRows() []refusalRow {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "refusals.md"))
	if err != nil {
		panic(err)
	}
	var rows []refusalRow
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		unquote := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
		rows = append(rows, refusalRow{unquote(cells[0]), unquote(cells[1]), unquote(cells[2]), unquote(cells[3])})
	}
	return rows
}

const diegoSecret = "diego-shared-secret"

// refusalCase makes one reason happen.
type refusalCase struct {
	opts proxyOpts
	// setup runs before the proxy starts (after the rig is up).
	setup func(e *env)
	// user is the SSH user name (default: cf:<app>/0).
	user string
	// password returns the password for one login (default: a fresh one-time code); key, when
	// set, logs in with a public key instead.
	password func(e *env) string
	key      func(e *env) (ssh.Signer, string)
	// fill gives the wording's placeholders their values.
	fill map[string]string
	// timeout bounds one client run beyond the usual.
	slow bool
}

func diegoUser(index int) string { return "diego:" + processGUID + "/" + strconv.Itoa(index) }

func diegoPassword(string) func(*env) string {
	return func(*env) string { return diegoSecret }
}

// staticTarget configures static target "db" at the rig's sshd, authorizing key alice.
func staticTarget(e *env, alice ssh.PublicKey) string {
	keyFile := filepath.Join(e.rig.Dir, "static_login_key")
	Expect(os.WriteFile(keyFile, []byte(e.rig.ProxyKeyPEM), 0o600)).To(Succeed())
	return "static_targets:\n- name: db\n  instances: [127.0.0.1:" + strconv.Itoa(e.rig.SSHDPort) + "]\n" +
		"  host_fingerprint: " + ssh256(e.sshdHostKey) + "\n  private_key_file: " + keyFile + "\n" +
		"  authorized_keys: ['" + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(alice))) + "']\n"
}

// silentListener accepts TCP connections and never answers; it returns its port.
func silentListener() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	DeferCleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

var refusalCases = map[string]refusalCase{
	"bad-username":    {user: "root"},
	"scheme-disabled": {user: diegoUser(0), password: diegoPassword("")},
	"no-scheme":       {opts: proxyOpts{disableCF: true}, password: func(*env) string { return "anything" }},
	"invalid-code":    {password: func(*env) string { return "not-a-code" }},
	"invalid-credential": {opts: proxyOpts{diegoCredentials: diegoSecret}, user: diegoUser(0),
		password: func(*env) string { return "wrong-secret" }},
	"unknown-target": {opts: proxyOpts{diegoCredentials: diegoSecret}, user: "nope/0", password: diegoPassword(""),
		setup: func(e *env) {
			alice, _ := ed25519Key()
			e.startOpts.extra = staticTarget(e, alice.PublicKey())
		}},
	"key-not-authorized": {user: "db/0",
		setup: func(e *env) {
			alice, _ := ed25519Key()
			e.startOpts.extra = staticTarget(e, alice.PublicKey())
		},
		key: func(*env) (ssh.Signer, string) { return ed25519Key() }},
	"not-permitted": {setup: func(e *env) { e.cc.AddApp(appGUID, processGUID, 2, true, "someone-else") }},
	"no-such-app":   {setup: func(e *env) { e.cc.RemoveApp(appGUID) }},
	"ssh-disabled":  {setup: func(e *env) { e.cc.AddApp(appGUID, processGUID, 2, false) }},
	"token-rejected": {setup: func(e *env) {
		e.cc.SetValidator(func(string) (string, bool) { return "", false })
	}},
	"cc-misconfigured": {opts: proxyOpts{ccPath: "/not-the-internal-api"}},
	"uaa-unavailable": {password: func(e *env) string {
		code := e.code()
		e.uaa.SetMode(uaastub.Down)
		return code
	}},
	"cc-unavailable":    {setup: func(e *env) { e.cc.SetMode(ccstub.ServerError) }},
	"process-not-found": {setup: func(e *env) { e.bbs.RemoveDesiredLRP(processGUID) }},
	"no-ssh-route": {setup: func(e *env) {
		e.bbs.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: processGUID, Instances: 2,
			Routes: map[string][]byte{"cf-router": []byte(`[]`)}})
	}},
	"no-such-instance": {user: "cf:" + appGUID + "/5", fill: map[string]string{"index": "5", "app": "dora", "instances": "2"}},
	"instance-not-running": {setup: func(e *env) { e.setRunning(bbs.StateCrashed) },
		fill: map[string]string{"index": "0", "state": "CRASHED"}},
	"bbs-unavailable": {setup: func(e *env) { e.bbs.SetMode(bbsstub.Down) }},
	"backend-timeout": {slow: true, fill: map[string]string{"timeout": "5s"}, setup: func(e *env) {
		e.rig.SSHDPort = silentListener()
		e.setRunning(bbs.StateRunning)
	}},
	"backend-unreachable": {setup: func(e *env) { e.sshd.Kill().Wait(10 * time.Second) }},
	"host-key-mismatch": {setup: func(e *env) {
		other, _ := ed25519Key()
		e.setRoute(func(r map[string]any) { r["host_256_fingerprint"] = ssh256(other) })
	}},
	"backend-tls": {opts: proxyOpts{backendsTLS: true}, setup: func(e *env) { e.startTLSFront("some-other-instance") }},
	"backend-auth": {setup: func(e *env) {
		_, otherPEM := ed25519Key()
		e.setRoute(func(r map[string]any) { r["private_key"] = otherPEM })
	}},
}

// metricsPage is the proxy's Prometheus text page (a proxy started with metrics).
func metricsPage(e *env) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(e.rig.MetricsPort) + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

// cfLikeLogin connects as the cf CLI does (x/crypto ssh.Dial, then NewSession) and returns the
// authentication error, the banners, and the session error.
func cfLikeLogin(port int, user string, method ssh.AuthMethod) (authErr error, banner string, sessionErr error) {
	var b bytes.Buffer
	c, err := ssh.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{method}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second,
		BannerCallback: func(m string) error { b.WriteString(m); return nil },
	})
	if err != nil {
		return err, b.String(), nil
	}
	defer c.Close()
	s, err := c.NewSession()
	if err == nil {
		s.Close()
	}
	return nil, b.String(), err
}

// opensshLogin runs OpenSSH's ssh (password under sshpass, or the key in keyPEM) and returns
// its stderr and exit code.
func opensshLogin(e *env, user, password, keyPEM string) (string, int) {
	if keyPEM == "" {
		args := append(e.clientOpts(), "-p", strconv.Itoa(e.proxyPort), user+"@127.0.0.1", "true")
		r := runClient(password, nil, "ssh", args...)
		return r.stderr, r.code
	}
	block, _ := pem.Decode([]byte(keyPEM))
	Expect(block).NotTo(BeNil())
	keyFile := filepath.Join(GinkgoT().TempDir(), "id")
	Expect(os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)).To(Succeed())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes", "-i", keyFile,
		"-p", strconv.Itoa(e.proxyPort), user+"@127.0.0.1", "true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	Expect(err == nil || errors.As(err, &exit)).To(BeTrue(), "%v", err)
	code := 0
	if exit != nil {
		code = exit.ExitCode()
	}
	return stderr.String(), code
}

var _ = Describe("refusals: every reason in docs/refusals.md, as the cf CLI's client and OpenSSH see it", func() {
	rows := refusalRows()

	It("has a case for every documented reason, and no case without a row", func() {
		documented := map[string]bool{}
		for _, r := range rows {
			documented[r.code] = true
			Expect(refusalCases).To(HaveKey(r.code))
		}
		for code := range refusalCases {
			Expect(documented).To(HaveKey(code))
		}
		Expect(rows).To(HaveLen(24))
	})

	for _, row := range rows {
		It(row.code+" ("+row.where+"): "+row.wording, func() {
			c, ok := refusalCases[row.code]
			Expect(ok).To(BeTrue(), "no case for %s", row.code)
			e := newEnv()
			e.startOpts = c.opts
			e.startOpts.metrics, e.startOpts.auditLog = true, true
			if c.setup != nil {
				c.setup(e)
			}
			e.startProxy(e.startOpts)
			want := row.wording
			for k, v := range c.fill {
				want = strings.ReplaceAll(want, "{"+k+"}", v)
			}
			Expect(want).NotTo(ContainSubstring("{"), "a placeholder has no value")
			user := c.user
			if user == "" {
				user = e.user()
			}
			password := c.password
			if password == nil {
				password = func(e *env) string { return e.code() }
			}
			var method ssh.AuthMethod
			pw, keyPEM := "", ""
			if c.key != nil {
				var signer ssh.Signer
				signer, keyPEM = c.key(e)
				method = ssh.PublicKeys(signer)
			} else {
				pw = password(e)
				method = ssh.Password(pw)
			}

			authErr, banner, sessionErr := cfLikeLogin(e.proxyPort, user, method)
			if c.key == nil {
				pw = password(e)
			}
			stderr, code := opensshLogin(e, user, pw, keyPEM)
			Expect(code).To(Equal(255), stderr)

			switch row.where {
			case "authentication":
				Expect(authErr).To(MatchError(ContainSubstring("unable to authenticate")))
				Expect(banner).To(ContainSubstring("ssh-proxy: " + want))
				Expect(stderr).To(ContainSubstring("ssh-proxy: " + want))
			case "channel-open":
				Expect(authErr).NotTo(HaveOccurred())
				Expect(banner).To(BeEmpty())
				Expect(sessionErr).To(MatchError(`ssh: rejected: connect failed ("` + want + `")`))
				Expect(stderr).To(ContainSubstring("channel 0: open failed: connect failed: " + want))
				// Recorded as a refusal, never as a session.
				Eventually(e.proxyLog, 10*time.Second).Should(ContainSubstring(`"reason_code":"` + row.code + `"`))
				Expect(e.proxyLog()).To(ContainSubstring("ssh-proxy.session-refused"))
				Expect(e.proxyLog()).NotTo(ContainSubstring("ssh-proxy.session-started"))
				Expect(metricsPage(e)).To(ContainSubstring(`ssh_proxy_refusals_total{reason="instance"} 2`))
				audit, err := os.ReadFile(e.rig.AuditFile)
				Expect(err).NotTo(HaveOccurred())
				Expect(strings.Count(string(audit), `"event":"session-refused"`)).To(Equal(2), string(audit))
				Expect(string(audit)).To(ContainSubstring(`"reason_code":"` + row.code + `","reason":"` + want + `"`))
				Expect(string(audit)).NotTo(ContainSubstring("session-start"))
			default:
				Fail("unknown place " + row.where)
			}
			Expect(e.proxyLog()).To(ContainSubstring(`"blame":"` + row.blame + `"`))
		})
	}
})

var _ = Describe("penalties follow the refusal's blame", func() {
	// Client addresses are known (client_addresses_preserved) and loopback is not exempt, so
	// penalties are live for this suite's 127.0.0.1: one client fault (5s) outlasts min (1s).
	const penalties = "client_addresses_preserved: true\nper_source_penalty_exempt_list: []\n" +
		"per_source_penalties: {enabled: true, authfail: 5s, min: 1s, max: 60s}\n"
	var e *env
	BeforeEach(func() {
		e = newEnv()
		e.startProxy(proxyOpts{extra: penalties})
	})

	login := func(user, password string) (error, error) {
		authErr, _, sessionErr := cfLikeLogin(e.proxyPort, user, ssh.Password(password))
		return authErr, sessionErr
	}

	It("never penalises a platform fault, however often it repeats", func() {
		for i := range 50 {
			if i%2 == 0 { // refused at authentication: UAA is down
				code := e.code()
				e.uaa.SetMode(uaastub.Down)
				authErr, _ := login(e.user(), code)
				Expect(authErr).To(MatchError(ContainSubstring("unable to authenticate")), "attempt %d", i)
				e.uaa.SetMode(uaastub.Normal)
			} else { // refused on the channel open: the BBS is down
				e.bbs.SetMode(bbsstub.Down)
				authErr, sessionErr := login(e.user(), e.code())
				Expect(authErr).NotTo(HaveOccurred(), "attempt %d", i)
				Expect(sessionErr).To(MatchError(ContainSubstring("BBS unavailable")), "attempt %d", i)
				e.bbs.SetMode(bbsstub.Normal)
			}
		}
		Eventually(func() int { return strings.Count(e.proxyLog(), "ssh-proxy.handshake-failed") }, 5*time.Second).Should(Equal(25))
		Eventually(func() int { return strings.Count(e.proxyLog(), "ssh-proxy.session-refused") }, 5*time.Second).Should(Equal(25))
		authErr, sessionErr := login(e.user(), e.code())
		Expect(authErr).NotTo(HaveOccurred())
		Expect(sessionErr).NotTo(HaveOccurred())
		Expect(e.proxyLog()).NotTo(ContainSubstring(`"reason":"penalty"`))
	})

	It("penalises a client fault: the next connection is refused at once, even with a good code", func() {
		authErr, _ := login(e.user(), "not-a-code")
		Expect(authErr).To(MatchError(ContainSubstring("unable to authenticate")))
		// The penalty is recorded once the proxy has finished with that connection.
		Eventually(e.proxyLog, 5*time.Second).Should(ContainSubstring("ssh-proxy.handshake-failed"))
		authErr, _ = login(e.user(), e.code())
		Expect(authErr).To(HaveOccurred())
		Expect(authErr).NotTo(MatchError(ContainSubstring("unable to authenticate")), "closed before the handshake")
		Eventually(e.proxyLog, 5*time.Second).Should(ContainSubstring(`"reason":"penalty"`))
	})
})
