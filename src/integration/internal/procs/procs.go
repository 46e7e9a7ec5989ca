// Package procs starts and stops the long-running processes the integration suites need (the
// binaries under test, OpenSSH's sshd, config-server): one place for start, wait until it
// listens, and stop, so every suite cleans up and reports the same way.
package procs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
)

// StopTimeout is how long Stop waits after SIGTERM before it kills.
const StopTimeout = 10 * time.Second

// Process is one started process. Its output goes to GinkgoWriter (shown when a spec fails)
// and is kept in Session.Out / Session.Err.
type Process struct {
	Name    string
	Session *gexec.Session
	once    sync.Once
	code    int
}

// Start runs cmd and stops it (Stop) when the spec or container that started it ends. Unless
// cmd sets its own, a WaitDelay of 5s keeps a descendant that still holds the output (an nginx
// worker, an sshd session) from holding up the wait for its exit.
func Start(name string, cmd *exec.Cmd) *Process {
	GinkgoHelper()
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 5 * time.Second
	}
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred(), "starting %s", name)
	p := &Process{Name: name, Session: s}
	DeferCleanup(func() { p.Stop() })
	return p
}

// Stop sends SIGTERM, waits up to StopTimeout, then kills; it returns the exit code (-1 when
// it had to kill). Calling it again returns the first result.
func (p *Process) Stop() int {
	p.once.Do(func() {
		p.Session.Terminate()
		select {
		case <-p.Session.Exited:
			p.code = p.Session.ExitCode()
		case <-time.After(StopTimeout):
			p.Session.Kill()
			<-p.Session.Exited
			p.code = -1
		}
	})
	return p.code
}

// Output is what the process wrote so far, stdout then stderr.
func (p *Process) Output() string {
	return string(p.Session.Out.Contents()) + string(p.Session.Err.Contents())
}

// exited returns a StopTrying error once the process has exited, so waits fail at once.
func (p *Process) exited() error {
	select {
	case <-p.Session.Exited:
		return StopTrying(fmt.Sprintf("%s exited with code %d: %s", p.Name, p.Session.ExitCode(), p.Output()))
	default:
		return nil
	}
}

// WaitListening waits (at most 30s) until something accepts on addr.
func (p *Process) WaitListening(addr string) {
	GinkgoHelper()
	Eventually(func() error {
		if err := p.exited(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}).WithTimeout(30*time.Second).WithPolling(50*time.Millisecond).Should(Succeed(), "%s on %s", p.Name, addr)
}

// WaitSSH waits (at most 30s) until addr answers with an SSH-2.0 identification line.
func (p *Process) WaitSSH(addr string) {
	GinkgoHelper()
	Eventually(func() error {
		if err := p.exited(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "SSH-2.0-") {
			return errors.New("not an SSH identification line: " + strconv.Quote(line))
		}
		return nil
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "%s on %s", p.Name, addr)
}

// FreePort is a port on 127.0.0.1 that was free a moment ago. It is picked below Linux's
// ephemeral range (32768+), so no outgoing connection takes it before the process binds it,
// and never twice in one test process: a rig asks for several ports before it starts anything,
// and two of them must not be the same one.
func FreePort() int {
	GinkgoHelper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		if handedOut.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut.ports[port] = true
		return port
	}
	Fail("no free port between 20000 and 32000 after 200 tries")
	return 0
}

// handedOut is every port FreePort has returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Addr is "127.0.0.1:port".
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
