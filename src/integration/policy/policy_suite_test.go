// Package policy_test drives the operator policy, the channel audit events and session
// recording of the ssh-proxy binary end to end (issue 17, docs/policy.md): real OpenSSH clients
// (ssh, sftp under sshpass) through ssh-proxy into our sshd, with the UAA, Cloud Controller and
// BBS stand-ins on 127.0.0.1.
package policy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/integration/internal/proxyrig"
)

func TestPolicy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ssh-proxy Policy Suite")
}

const (
	appGUID      = "5d1f0c2e-7a3b-4c8d-9e0f-1a2b3c4d5e6f"
	processGUID  = appGUID + "-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	instanceGUID = "inst-policy-0"
	clientSecret = "policy-uaa-client-secret"
	// envSecret is an env value a client sends; it must never reach a log or audit file.
	envSecret = "env-value-never-logged-7c1d"
)

var proxyBin, sshdBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	return proxyrig.BuildBinaries("policy", "ssh", "sftp", "sshpass", "asciinema")
}, func(b []byte) {
	proxyBin, sshdBin = proxyrig.Binaries(b)
})

// secrets collects every credential handed out and every log and audit file written, for the
// final grep.
var secrets struct {
	sync.Mutex
	values []string
	logs   []string
}

func rememberSecret(v string) string {
	secrets.Lock()
	secrets.values = append(secrets.values, v)
	secrets.Unlock()
	return v
}

var _ = AfterSuite(func() {
	secrets.Lock()
	defer secrets.Unlock()
	Expect(secrets.logs).NotTo(BeEmpty())
	values := append([]string{envSecret}, secrets.values...)
	for i, text := range secrets.logs {
		Expect(text).NotTo(ContainSubstring("PRIVATE KEY"), "log %d", i)
		// A JWT's header and claims ("eyJ…" "." "eyJ…"); a bare "eyJ" turns up in base64 fingerprints.
		Expect(text).NotTo(MatchRegexp(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+`), "log %d holds what looks like a JWT", i)
		for _, v := range values {
			for _, line := range strings.Split(v, "\n") {
				if len(line) >= 8 && !strings.HasPrefix(line, "-----") {
					Expect(text).NotTo(ContainSubstring(line), "log %d leaks a secret", i)
				}
			}
		}
	}
})

// env is one deployment (proxyrig) with a proxy configured by extra YAML.
type env struct {
	rig     *proxyrig.Rig
	castDir string
}

func newEnv(extra string) *env {
	r := proxyrig.New(proxyrig.Options{
		ProxyBin: proxyBin, SSHDBin: sshdBin,
		CAName: "policy-ca", ClientSecret: clientSecret,
		AppGUID: appGUID, ProcessGUID: processGUID, InstanceGUID: instanceGUID, Instances: 1,
		CellID: "cell-0", InstanceAddress: "10.255.0.9",
		Secret: rememberSecret,
		Logs: func(logs ...string) {
			secrets.Lock()
			secrets.logs = append(secrets.logs, logs...)
			secrets.Unlock()
		},
	})
	e := &env{rig: r, castDir: filepath.Join(r.Dir, "casts")}
	extra = strings.ReplaceAll(extra, "CASTDIR", e.castDir)
	r.StartProxy(proxyrig.ProxyConfig{CommunicationTimeout: "5s", Metrics: true, AuditLog: true, Extra: extra})
	DeferCleanup(func() {
		// casts are session output, not logs, but the secret grep covers them too
		entries, _ := os.ReadDir(e.castDir)
		for _, en := range entries {
			b, _ := os.ReadFile(filepath.Join(e.castDir, en.Name()))
			secrets.Lock()
			secrets.logs = append(secrets.logs, string(b))
			secrets.Unlock()
		}
	})
	return e
}

func (e *env) user() string { return "cf:" + appGUID + "/0" }

func (e *env) sshArgs(args ...string) []string {
	return append(append(proxyrig.ClientOptions("", 20), "-p", strconv.Itoa(e.rig.ProxyPort), e.user()+"@127.0.0.1"), args...)
}

// ssh runs OpenSSH to completion (bounded at 60s) with a fresh code; opts go before the
// destination, args after it.
func (e *env) ssh(stdin io.Reader, opts []string, args ...string) proxyrig.Result {
	all := append(append(append([]string{}, proxyrig.ClientOptions("", 20)...), opts...),
		"-p", strconv.Itoa(e.rig.ProxyPort), e.user()+"@127.0.0.1")
	return proxyrig.RunClient(e.rig.Code(), stdin, "ssh", append(all, args...)...)
}

// sshStart starts OpenSSH in the background; the returned func stops it and returns its stderr.
func (e *env) sshStart(opts []string, args ...string) (*exec.Cmd, func() string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	all := append(append(append([]string{}, proxyrig.ClientOptions("", 20)...), opts...),
		"-p", strconv.Itoa(e.rig.ProxyPort), e.user()+"@127.0.0.1")
	cmd := proxyrig.ClientCmd(ctx, e.rig.Code(), "ssh", append(all, args...)...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	Expect(cmd.Start()).To(Succeed())
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			cancel()
		})
		return stderr.String()
	}
	DeferCleanup(func() { stop() })
	return cmd, func() string { return stop() }
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (e *env) sftp(batch string) proxyrig.Result {
	args := append(proxyrig.ClientOptions("", 20), "-P", strconv.Itoa(e.rig.ProxyPort), "-o", "User="+e.user(), "127.0.0.1")
	return proxyrig.RunClient(e.rig.Code(), strings.NewReader(batch), "sftp", args...)
}

// goClient is a logged-in Go SSH client.
func (e *env) goClient() *ssh.Client {
	client, err := ssh.Dial("tcp", procs.Addr(e.rig.ProxyPort), &ssh.ClientConfig{User: e.user(),
		Auth: []ssh.AuthMethod{ssh.Password(e.rig.Code())}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	Expect(err).NotTo(HaveOccurred())
	return client
}

// eventsOf are the audit events named event.
func (e *env) eventsOf(event string) []map[string]any {
	var out []map[string]any
	for _, m := range e.rig.AuditEvents() {
		if m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// waitChannels waits until the audit log has n channel events and returns them (a channel's
// event is written when the proxy has closed it, which may be just after the client exited).
func (e *env) waitChannels(n int) []map[string]any {
	Eventually(func() []map[string]any { return e.eventsOf("channel") }, 10*time.Second, 50*time.Millisecond).Should(HaveLen(n))
	return e.eventsOf("channel")
}

// denials is ssh_proxy_policy_denials_total{kind}.
func (e *env) denials(kind string) float64 {
	return e.rig.Metric(fmt.Sprintf("ssh_proxy_policy_denials_total{kind=%q}", kind))
}

// echoServer listens on 127.0.0.1 and answers every connection with "hello from <port>\n".
func echoServer() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	port := ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintf(c, "hello from %d\n", port)
			_ = c.Close()
		}
	})
	DeferCleanup(func() { ln.Close(); wg.Wait() })
	return port
}

// readVia dials 127.0.0.1:port (a forward's local end) and returns what it reads until EOF.
func readVia(port int) (string, error) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// waitListening waits until a forward's local end accepts connections.
func waitListening(port int) {
	Eventually(func() error {
		c, err := net.DialTimeout("tcp", procs.Addr(port), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
}
