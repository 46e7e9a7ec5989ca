// Package e2e drives scripts/run-local end to end: it starts the whole system headless
// (`--detach`, and `--cf --detach`) with a temporary state directory and free ports, uses the
// real OpenSSH ssh, scp and sftp through the proxy, then stops it and checks that no process it
// started is left.
package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end (scripts/run-local) Suite")
}

var repoRoot string

var _ = BeforeSuite(func() {
	wd, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	repoRoot = filepath.Clean(filepath.Join(wd, "..", "..", ".."))
	Expect(filepath.Join(repoRoot, "scripts", "run-local")).To(BeAnExistingFile())
	for _, tool := range []string{"ssh", "scp", "sftp", "ssh-keygen", "pgrep", "setsid"} {
		_, err := exec.LookPath(tool)
		Expect(err).NotTo(HaveOccurred(), "the e2e suite needs %s on PATH (scripts/test installs openssh-client)", tool)
	}
})

// freePort is a loopback port below the ephemeral range that was free a moment ago.
var freePort = procs.FreePort

// result is one finished command.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("err=%v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
}

// run runs name with args, with a deadline, and collects its output.
func run(timeout time.Duration, env []string, stdin string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("%s timed out after %s", name, timeout))
	}
	return result{stdout: out.String(), stderr: errb.String(), err: err}
}

// localRun is one scripts/run-local instance with its own state directory and ports.
type localRun struct {
	state                          string
	proxyPort, healthPort, sshPort int
	wsPort                         int // the WebSocket listener's (used with --ws)
	printed                        string
}

func newLocalRun() *localRun {
	return &localRun{
		state:     filepath.Join(GinkgoT().TempDir(), "state"),
		proxyPort: freePort(), healthPort: freePort(), sshPort: freePort(), wsPort: freePort(),
	}
}

func (l *localRun) env() []string {
	return []string{
		"APP_SSH_LOCAL_DIR=" + l.state,
		fmt.Sprintf("APP_SSH_PROXY_PORT=%d", l.proxyPort),
		fmt.Sprintf("APP_SSH_HEALTH_PORT=%d", l.healthPort),
		fmt.Sprintf("APP_SSH_SSHD_PORT=%d", l.sshPort),
		fmt.Sprintf("APP_SSH_WS_PORT=%d", l.wsPort),
		"APP_SSH_READY_TIMEOUT=60",
	}
}

func (l *localRun) script(timeout time.Duration, args ...string) result {
	return run(timeout, l.env(), "", filepath.Join(repoRoot, "scripts", "run-local"), args...)
}

// start runs scripts/run-local --detach [extra...] and registers stop + the leak check.
func (l *localRun) start(extra ...string) {
	// The first start may build the binaries and the bosh CLI.
	r := l.script(10*time.Minute, append([]string{"--detach"}, extra...)...)
	DeferCleanup(l.stopAndCheck)
	Expect(r.err).NotTo(HaveOccurred(), r.String())
	l.printed = r.stdout
	Expect(filepath.Join(l.state, "ready")).To(BeAnExistingFile())
}

// ourProcesses lists processes whose command line names the state directory.
func (l *localRun) ourProcesses() string {
	r := run(10*time.Second, nil, "", "pgrep", "-a", "-f", l.state)
	return strings.TrimSpace(r.stdout)
}

func (l *localRun) stopAndCheck() {
	r := l.script(time.Minute, "stop")
	Expect(r.err).NotTo(HaveOccurred(), r.String())
	Eventually(l.ourProcesses, 10*time.Second, 100*time.Millisecond).Should(BeEmpty())
	pids, err := filepath.Glob(filepath.Join(l.state, "pids", "*.pid"))
	Expect(err).NotTo(HaveOccurred())
	Expect(pids).To(BeEmpty())
}

// printedLine returns the first printed line that starts (after indentation) with prefix.
func (l *localRun) printedLine(prefix string) string {
	for _, line := range strings.Split(l.printed, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, prefix) {
			return t
		}
	}
	Fail(fmt.Sprintf("run-local printed no line starting with %q:\n%s", prefix, l.printed))
	return ""
}

// batch makes a printed OpenSSH command non-interactive: no password or host-key prompts.
// code is a fresh one-time code from `scripts/run-local code` (as `cf ssh-code` prints one).
func (l *localRun) code() string {
	GinkgoHelper()
	r := l.script(time.Minute, "code")
	Expect(r.err).NotTo(HaveOccurred(), r.String())
	c := strings.TrimSpace(r.stdout)
	Expect(c).To(MatchRegexp(`^\S{6,}$`))
	return c
}

// cfClient is the printed `ssh ... cf:<app-guid>/0@127.0.0.1` command of a --cf run as a
// client that logs in with a fresh one-time code each time, and the app's guid.
func (l *localRun) cfClient() (client, string) {
	GinkgoHelper()
	line := l.printedLine("ssh -p " + fmt.Sprint(l.proxyPort) + " -o UserKnownHostsFile")
	m := regexp.MustCompile(`^ssh -p \d+ (.+) cf:([0-9a-f-]+)/0@127\.0\.0\.1$`).FindStringSubmatch(line)
	Expect(m).NotTo(BeNil(), "unexpected cf ssh line %q", line)
	// BatchMode=no first: sftp -b turns batch mode (no password prompts) on after it.
	return client{port: l.proxyPort, opts: "-o BatchMode=no -o ConnectTimeout=20 -o NumberOfPasswordPrompts=1 " + m[1],
		user: "cf:" + m[2] + "/0", login: func() []string { return askpassEnv(l.code()) }}, m[2]
}

// askpassEnv makes OpenSSH answer its password prompt with code, as a person pasting it would.
func askpassEnv(code string) []string {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	codeFile := filepath.Join(dir, "code")
	Expect(os.WriteFile(codeFile, []byte(code+"\n"), 0o600)).To(Succeed())
	script := filepath.Join(dir, "askpass")
	Expect(os.WriteFile(script, []byte("#!/bin/sh\ncat "+quote(codeFile)+"\n"), 0o700)).To(Succeed())
	return []string{"SSH_ASKPASS=" + script, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none"}
}

func batch(cmdline string) string {
	for _, tool := range []string{"ssh ", "scp ", "sftp "} {
		if strings.HasPrefix(cmdline, tool) {
			return tool + "-o BatchMode=yes -o ConnectTimeout=20 " + strings.TrimPrefix(cmdline, tool)
		}
	}
	return cmdline
}

// shell runs a command line with bash.
func shell(timeout time.Duration, env []string, stdin, cmdline string) result {
	return run(timeout, env, stdin, "bash", "-c", cmdline)
}

func writeTree(root string) {
	Expect(os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(root, "a.txt"), []byte("alpha\n"), 0o644)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(root, "sub", "b.bin"), bytes.Repeat([]byte{0, 1, 2, 255}, 100000), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(root, "sub", "deeper", "c.sh"), []byte("#!/bin/sh\necho c\n"), 0o755)).To(Succeed())
}

func expectSameTree(want, got string) {
	for _, rel := range []string{"a.txt", "sub/b.bin", "sub/deeper/c.sh"} {
		w, err := os.ReadFile(filepath.Join(want, rel))
		Expect(err).NotTo(HaveOccurred())
		g, err := os.ReadFile(filepath.Join(got, rel))
		Expect(err).NotTo(HaveOccurred(), "missing %s in %s", rel, got)
		Expect(g).To(Equal(w), rel)
	}
	st, err := os.Stat(filepath.Join(got, "sub", "deeper", "c.sh"))
	Expect(err).NotTo(HaveOccurred())
	Expect(st.Mode().Perm()&0o100).NotTo(BeZero(), "scp -r kept the executable bit")
}
