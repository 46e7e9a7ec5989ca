package websocket_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/wslisten"
)

const (
	// serverName is the name in the listener's and nginx's certificates; the URL uses the IP.
	serverName = "ssh.example.test"
	cmdTimeout = 60 * time.Second
)

func newCA() (*certs.CA, error) { return certs.NewCA("websocket suite CA") }

func sshdPath() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return "/usr/sbin/sshd"
}

// freePort is a loopback port that was free a moment ago.
var freePort = procs.FreePort

// rig is OpenSSH's sshd behind a wslisten listener (the listener's connections are bridged to
// sshd over TCP), with a client key, a known_hosts file and a test CA.
type rig struct {
	dir        string
	ca         *certs.CA
	caFile     string
	keyFile    string
	knownHosts string
	sshdAddr   string
	l          *wslisten.Listener
	url        string

	accepted  atomic.Int64 // connections that came out of Accept
	forwarded atomic.Int64 // of those, with the client from a trusted router's X-Forwarded-For
}

func newRig(mod func(*wslisten.Config)) *rig {
	r := &rig{dir: GinkgoT().TempDir()}
	var err error
	r.ca, err = newCA()
	Expect(err).NotTo(HaveOccurred())
	r.caFile, err = r.ca.WriteFile(r.dir, "ca")
	Expect(err).NotTo(HaveOccurred())
	r.startSSHD()
	kp, err := r.ca.Issue(serverName, serverName, "127.0.0.1")
	Expect(err).NotTo(HaveOccurred())
	certFile, keyFile, err := kp.WriteFiles(r.dir, "listener")
	Expect(err).NotTo(HaveOccurred())
	cfg := wslisten.Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile}
	if mod != nil {
		mod(&cfg)
	}
	r.l, err = wslisten.Listen(cfg)
	Expect(err).NotTo(HaveOccurred())
	r.url = "wss://" + r.l.Addr().String() + "/"
	r.serveBridge()
	return r
}

func (r *rig) keygen(name string) string {
	path := filepath.Join(r.dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return path
}

func (r *rig) startSSHD() {
	hostKey := r.keygen("host")
	r.keyFile = r.keygen("client")
	pub, err := os.ReadFile(r.keyFile + ".pub")
	Expect(err).NotTo(HaveOccurred())
	authorized := filepath.Join(r.dir, "authorized_keys")
	Expect(os.WriteFile(authorized, pub, 0o600)).To(Succeed())
	hostPub, err := os.ReadFile(hostKey + ".pub")
	Expect(err).NotTo(HaveOccurred())
	r.knownHosts = filepath.Join(r.dir, "known_hosts")
	Expect(os.WriteFile(r.knownHosts, []byte(serverName+" "+string(hostPub)), 0o600)).To(Succeed())

	r.sshdAddr = "127.0.0.1:" + strconv.Itoa(freePort())
	cmd := exec.Command(sshdPath(), "-D", "-e", "-f", "/dev/null",
		"-o", "ListenAddress="+r.sshdAddr,
		"-o", "HostKey="+hostKey,
		"-o", "AuthorizedKeysFile="+authorized,
		"-o", "StrictModes=no",
		"-o", "PidFile=none", "-o", "UsePAM=no", "-o", "PasswordAuthentication=no",
		"-o", "PermitRootLogin=prohibit-password",
		"-o", "AllowTcpForwarding=yes",
		"-o", "Subsystem=sftp internal-sftp")
	procs.Start("OpenSSH's sshd", cmd).WaitListening(r.sshdAddr)
}

// serveBridge accepts from the listener and relays each connection to sshd, in goroutines
// that cleanup stops and waits for.
func (r *rig) serveBridge() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if open == nil {
			return false
		}
		open[c] = struct{}{}
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := r.l.Accept()
			if err != nil {
				return
			}
			r.accepted.Add(1)
			if c.(*wslisten.Conn).Forwarded() {
				r.forwarded.Add(1)
			}
			up, err := net.DialTimeout("tcp", r.sshdAddr, 10*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			if !track(c) || !track(up) {
				_ = c.Close()
				_ = up.Close()
				return
			}
			wg.Add(2)
			go func() { defer wg.Done(); relay(up, c) }()
			go func() { defer wg.Done(); relay(c, up) }()
		}
	}()
	DeferCleanup(func() {
		_ = r.l.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		open = nil
		mu.Unlock()
		wg.Wait()
	})
}

// relay copies src to dst and closes both when src ends.
func relay(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
}

// proxyCommand is the ProxyCommand running app-ssh-ws against url, trusting the test CA.
func (r *rig) proxyCommand(url string) string {
	return fmt.Sprintf("%s --ca-cert %s %s", clientPath, r.caFile, url)
}

// sshOpts are the options every OpenSSH tool gets: ProxyCommand, the client key, the known host.
func (r *rig) sshOpts(url string) []string {
	return []string{
		"-F", "/dev/null",
		"-o", "ProxyCommand=" + r.proxyCommand(url),
		"-o", "UserKnownHostsFile=" + r.knownHosts,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "IdentitiesOnly=yes",
		"-o", "ConnectTimeout=30",
		"-i", r.keyFile,
	}
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *rig) ssh(url string, args ...string) (string, error) {
	return run("ssh", append(append(r.sshOpts(url), "root@"+serverName), args...)...)
}

// clientRun runs app-ssh-ws with stdin held open and returns its session.
func clientRun(env []string, args ...string) (*gexec.Session, io.Closer) {
	cmd := exec.Command(clientPath, args...)
	cmd.Env = append(os.Environ(), env...)
	stdin, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { sess.Kill().Wait(10 * time.Second) })
	return sess, stdin
}

// trustLoopback makes loopback a trusted router network.
func trustLoopback(c *wslisten.Config) {
	c.TrustedRouters = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

func oneLine(s string) bool { return strings.Count(strings.TrimSpace(s), "\n") == 0 }
