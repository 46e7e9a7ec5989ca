package sshd_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
	"golang.org/x/crypto/ssh"
)

const (
	startTimeout = 20 * time.Second
	cmdTimeout   = 60 * time.Second
)

// daemon is one running sshd under test, with its own HOME.
type daemon struct {
	session *gexec.Session
	port    string
	home    string
	user    string // the login name; "" means vcap (our sshd takes any)
}

// login is the user name clients log in with.
func (d *daemon) login() string {
	if d.user != "" {
		return d.user
	}
	return "vcap"
}

var startedRE = regexp.MustCompile(`"message":"sshd.started".*?"address":"127\.0\.0\.1:(\d+)"`)

// startDaemon runs the sshd on an ephemeral loopback port with HOME set to a fresh directory;
// extraEnv is appended to its environment.
func startDaemon(extraEnv []string, args ...string) *daemon {
	home := GinkgoT().TempDir()
	cmd := exec.Command(sshdPath, append([]string{"-address=127.0.0.1:0"}, args...)...)
	cmd.Env = append([]string{"HOME=" + home, "USER=vcap", "PATH=" + os.Getenv("PATH")}, extraEnv...)
	cmd.Dir = home
	sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		sess.Terminate()
		// A clean shutdown on SIGTERM exits 0 (a -race build exits 66 after a data race).
		Eventually(sess, startTimeout).Should(gexec.Exit(0))
	})
	Eventually(sess.Out, startTimeout).Should(gbytes.Say(`"message":"sshd.started"`))
	m := startedRE.FindSubmatch(sess.Out.Contents())
	Expect(m).NotTo(BeNil(), "started line names the address")
	return &daemon{session: sess, port: string(m[1]), home: home}
}

// startKeyed starts a daemon that authorizes clientKey with the given host key flags.
func startKeyed(extraEnv []string, args ...string) *daemon {
	return startDaemon(extraEnv, append([]string{"-hostKey=" + hostKey.PrivatePEM, "-authorizedKey=" + clientKey.AuthorizedKey}, args...)...)
}

// commonOpts are the client options every OpenSSH tool gets: no user config, no known_hosts,
// only the given identity.
func commonOpts(key string) []string {
	opts := []string{
		"-F", "/dev/null",
		"-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "LogLevel=ERROR",
		"-o", "BatchMode=yes",
		"-o", "ConnectTimeout=10",
	}
	if key != "" {
		opts = append(opts, "-o", "IdentitiesOnly=yes", "-i", key)
	} else {
		opts = append(opts, "-o", "PubkeyAuthentication=no")
	}
	return opts
}

// sshCmd builds `ssh <opts> -p PORT [extra...] USER@127.0.0.1 [remote...]`.
func (d *daemon) sshCmd(key string, extra []string, remote ...string) *exec.Cmd {
	// ssh keeps the first value it sees for an option: extra goes first so it can override.
	args := append(append([]string{}, extra...), commonOpts(key)...)
	args = append(args, "-p", d.port)
	args = append(args, d.login()+"@127.0.0.1")
	args = append(args, remote...)
	return exec.Command("ssh", args...)
}

func (d *daemon) scpCmd(extra ...string) *exec.Cmd {
	args := append(commonOpts(clientKey.PrivateFile), "-P", d.port)
	return exec.Command("scp", append(args, extra...)...)
}

func (d *daemon) remote(path string) string { return "vcap@127.0.0.1:" + path }

// run starts cmd and waits (bounded) for it to exit.
func run(cmd *exec.Cmd) *gexec.Session {
	sess, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { sess.Kill() })
	Eventually(sess, cmdTimeout).Should(gexec.Exit())
	return sess
}

// goClient connects with golang.org/x/crypto/ssh (for what the OpenSSH CLI cannot show:
// exit signals, refused requests).
func (d *daemon) goClient(auth ...ssh.AuthMethod) (*ssh.Client, error) {
	cfg := &ssh.ClientConfig{
		User:            d.login(),
		Auth:            auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	}
	return ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", d.port), cfg)
}

func (d *daemon) mustGoClient() *ssh.Client {
	c, err := d.goClient(ssh.PublicKeys(clientKey.Signer))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c
}

// freePort returns a loopback port that was free a moment ago.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func itoa(i int) string { return strconv.Itoa(i) }

func withTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), cmdTimeout)
}

func netDial(port string) (net.Conn, error) {
	return net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), 10*time.Second)
}
