package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const cmdTimeout = 60 * time.Second

// client builds OpenSSH command lines for one way of logging in through the proxy.
type client struct {
	port int
	opts string // options shared by ssh, scp and sftp (no port, no user)
	user string
	// login prepares the next connection (cf: fetches a fresh one-time code) and returns the
	// environment the OpenSSH tool needs.
	login func() []string
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (c client) ssh(extra, remote string) result {
	line := fmt.Sprintf("ssh -p %d %s %s %s %s", c.port, c.opts, extra, quote(c.user+"@127.0.0.1"), remote)
	return shell(cmdTimeout, c.login(), "", line)
}

func (c client) sshStdin(extra, stdin string) result {
	line := fmt.Sprintf("ssh -p %d %s %s %s", c.port, c.opts, extra, quote(c.user+"@127.0.0.1"))
	return shell(cmdTimeout, c.login(), stdin, line)
}

func (c client) scp(args string) result {
	line := fmt.Sprintf("scp -P %d %s -o User=%s %s", c.port, c.opts, quote(c.user), args)
	return shell(cmdTimeout, c.login(), "", line)
}

func (c client) sftp(batchFile string) result {
	line := fmt.Sprintf("sftp -P %d %s -o User=%s -b %s 127.0.0.1", c.port, c.opts, quote(c.user), quote(batchFile))
	return shell(cmdTimeout, c.login(), "", line)
}

// sessionSpecs are the same checks for every way in.
func sessionSpecs(get func() client) {
	It("runs a command (exec) with its exit status", func() {
		c := get()
		r := c.ssh("", "'echo hello-from-the-instance; exit 3'")
		Expect(r.stdout).To(Equal("hello-from-the-instance\n"), r.String())
		var ee *exec.ExitError
		Expect(r.err).To(BeAssignableToTypeOf(ee), r.String())
		Expect(r.err.(*exec.ExitError).ExitCode()).To(Equal(3))
	})

	It("opens an interactive shell with a pty", func() {
		c := get()
		r := c.sshStdin("-tt", "echo product=$((6*7)); tty\nexit 0\n")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(ContainSubstring("product=42"))
		Expect(r.stdout).To(MatchRegexp(`/dev/pts/\d+`))
	})

	It("copies a directory tree both ways with scp -r", func() {
		c := get()
		tmp := GinkgoT().TempDir()
		src, remote, back := filepath.Join(tmp, "src"), filepath.Join(tmp, "remote"), filepath.Join(tmp, "back")
		writeTree(src)
		Expect(os.Mkdir(remote, 0o755)).To(Succeed())
		Expect(os.Mkdir(back, 0o755)).To(Succeed())

		r := c.scp(fmt.Sprintf("-r %s %s", quote(src), quote("127.0.0.1:"+remote+"/")))
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		// The "instance" is this machine, so the copy is visible right here.
		expectSameTree(src, filepath.Join(remote, "src"))

		r = c.scp(fmt.Sprintf("-r %s %s", quote("127.0.0.1:"+filepath.Join(remote, "src")), quote(back+"/")))
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		expectSameTree(src, filepath.Join(back, "src"))
	})

	It("runs an sftp batch (mkdir, put, get, ls, rm)", func() {
		c := get()
		tmp := GinkgoT().TempDir()
		local := filepath.Join(tmp, "up.txt")
		Expect(os.WriteFile(local, []byte("sftp payload\n"), 0o644)).To(Succeed())
		remoteDir := filepath.Join(tmp, "remote-dir")
		fetched := filepath.Join(tmp, "down.txt")
		batchFile := filepath.Join(tmp, "batch")
		Expect(os.WriteFile(batchFile, []byte(strings.Join([]string{
			"mkdir " + remoteDir,
			"put " + local + " " + remoteDir + "/up.txt",
			"put " + local + " " + remoteDir + "/gone.txt",
			"rm " + remoteDir + "/gone.txt",
			"get " + remoteDir + "/up.txt " + fetched,
			"ls -1 " + remoteDir,
		}, "\n")+"\n"), 0o644)).To(Succeed())

		r := c.sftp(batchFile)
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(filepath.Join(remoteDir, "up.txt")).To(BeAnExistingFile())
		Expect(filepath.Join(remoteDir, "gone.txt")).NotTo(BeAnExistingFile())
		Expect(os.ReadFile(fetched)).To(Equal([]byte("sftp payload\n")))
		Expect(r.stdout).To(ContainSubstring("up.txt"))
	})

	It("forwards a local port with ssh -L", func() {
		expectLocalForward(get())
	})
}

// expectLocalForward serves a page on 127.0.0.1, opens `ssh -N -L PORT:<page>` through the
// proxy and fetches the page through the tunnel.
func expectLocalForward(c client) {
	GinkgoHelper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "through-the-tunnel")
	}))
	defer web.Close()
	local := freePort()
	env := c.login()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	line := fmt.Sprintf("exec ssh -p %d %s -N -o ExitOnForwardFailure=yes -L %d:%s %s",
		c.port, c.opts, local, strings.TrimPrefix(web.URL, "http://"), quote(c.user+"@127.0.0.1"))
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	Expect(cmd.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		Eventually(exited, 10*time.Second).Should(Receive())
	}()

	hc := &http.Client{Timeout: 5 * time.Second}
	get := func() (string, error) {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", local))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	Eventually(func() (string, error) {
		select {
		case err := <-exited:
			exited <- err
			return "", StopTrying(fmt.Sprintf("ssh -L exited: %v\n%s", err, stderr.String()))
		default:
		}
		return get()
	}, 30*time.Second, 200*time.Millisecond).Should(Equal("through-the-tunnel"))
}

var _ = Describe("scripts/run-local (static target)", Ordered, func() {
	var (
		l      *localRun
		static client
	)

	BeforeAll(func() {
		l = newLocalRun()
		l.start()
		// Build the client from the printed command, so what a user pastes is what is tested.
		line := l.printedLine("ssh -p ")
		m := regexp.MustCompile(`^ssh -p (\d+) (.+) (local/0)@127\.0\.0\.1$`).FindStringSubmatch(line)
		Expect(m).NotTo(BeNil(), "unexpected ssh line %q", line)
		Expect(m[1]).To(Equal(fmt.Sprint(l.proxyPort)))
		static = client{port: l.proxyPort, opts: "-o BatchMode=yes -o ConnectTimeout=20 " + m[2], user: m[3],
			login: func() []string { return nil }}
	})

	It("prints ready-to-paste ssh, scp, sftp and ssh -L commands that work as printed", func() {
		r := shell(cmdTimeout, nil, "", batch(l.printedLine("ssh -p "))+" 'echo pasted-ok'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(Equal("pasted-ok\n"))

		scpLine := l.printedLine("scp ")
		Expect(scpLine).To(ContainSubstring(" -r ./some-dir 127.0.0.1:/tmp/"))
		Expect(l.printedLine("sftp ")).To(HaveSuffix(" 127.0.0.1"))
		Expect(l.printed).To(MatchRegexp(`(?m)^  ssh -p \d+ -i \S+ .* -N -L 8080:127\.0\.0\.1:80 local/0@127\.0\.0\.1$`))

		tmp := GinkgoT().TempDir()
		writeTree(filepath.Join(tmp, "some-dir"))
		dest := filepath.Join(tmp, "dest")
		Expect(os.Mkdir(dest, 0o755)).To(Succeed())
		pasted := strings.Replace(batch(scpLine), "127.0.0.1:/tmp/", "127.0.0.1:"+dest+"/", 1)
		r = run(cmdTimeout, nil, "", "bash", "-c", "cd "+quote(tmp)+" && "+pasted)
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		expectSameTree(filepath.Join(tmp, "some-dir"), filepath.Join(dest, "some-dir"))
	})

	sessionSpecs(func() client { return static })

	It("refuses a key that is not authorized for the target", func() {
		key := filepath.Join(GinkgoT().TempDir(), "stranger")
		Expect(run(cmdTimeout, nil, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).err).NotTo(HaveOccurred())
		stranger := static
		stranger.opts = strings.Replace(static.opts, "-i "+filepath.Join(l.state, "user_key"), "-i "+key, 1)
		Expect(stranger.opts).NotTo(Equal(static.opts))
		r := stranger.ssh("", "true")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring("Permission denied"))
	})

	It("refuses a second run on the same state directory while the first is up", func() {
		r := l.script(2*time.Minute, "--detach")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring("already running"))
	})

	It("reports its processes, one per line, and they name the state directory", func() {
		r := l.script(time.Minute, "status")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(ContainSubstring("sshd: running"))
		Expect(r.stdout).To(ContainSubstring("proxy: running"))
		Expect(r.stdout).To(ContainSubstring("cf-standins: not running"))
		Expect(strings.Split(l.ourProcesses(), "\n")).To(HaveLen(2))
	})
})

var _ = Describe("scripts/run-local --cf (development stand-ins)", Ordered, func() {
	var (
		l    *localRun
		cf   client
		code string
	)

	BeforeAll(func() {
		l = newLocalRun()
		l.start("--cf")
		cf, _ = l.cfClient()
		code = strings.TrimSpace(strings.TrimPrefix(l.printedLine("password (a one-time code"), "password (a one-time code, single use):"))
		Expect(code).NotTo(BeEmpty())
	})

	It("lets the printed cf: command in with the printed one-time code, once", func() {
		once := cf
		once.login = func() []string { return askpassEnv(code) }
		r := once.ssh("", "'echo cf-ok'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(Equal("cf-ok\n"))

		r = once.ssh("", "'echo again'")
		Expect(r.err).To(HaveOccurred(), "a one-time code worked twice")
		Expect(r.stdout).To(BeEmpty())
	})

	It("gives a fresh code with scripts/run-local code, and codes differ", func() {
		a, b := l.code(), l.code()
		Expect(a).NotTo(Equal(b))
	})

	sessionSpecs(func() client { return cf })

	It("refuses an app guid the Cloud Controller does not know", func() {
		other := cf
		other.user = "cf:00000000-0000-4000-a000-000000000000/0"
		r := other.ssh("", "true")
		Expect(r.err).To(HaveOccurred())
		Expect(r.stderr).To(ContainSubstring("no such app"))
	})

	It("lets diego:<process-guid>/0 and the static target in with the diego credentials", func() {
		creds := run(time.Minute, nil, "", filepath.Join(repoRoot, "bin", "bosh"), "int",
			filepath.Join(l.state, "vars.yml"), "--path", "/app_ssh_diego_credentials")
		Expect(creds.err).NotTo(HaveOccurred(), creds.String())
		b, err := os.ReadFile(filepath.Join(l.state, "cf", "standins.json"))
		Expect(err).NotTo(HaveOccurred())
		pg := regexp.MustCompile(`"process_guid": "([^"]+)"`).FindSubmatch(b)
		Expect(pg).NotTo(BeNil())
		secret := strings.TrimSpace(creds.stdout)

		for _, user := range []string{"diego:" + string(pg[1]) + "/0", "local/0"} {
			c := cf
			c.user = user
			c.login = func() []string { return askpassEnv(secret) }
			r := c.ssh("", "'echo diego-ok'")
			Expect(r.err).NotTo(HaveOccurred(), "%s: %s", user, r.String())
			Expect(r.stdout).To(Equal("diego-ok\n"))

			c.login = func() []string { return askpassEnv("wrong-" + secret) }
			Expect(c.ssh("", "true").err).To(HaveOccurred(), user)
		}
	})

	It("still serves the static target next to the cf: one", func() {
		r := shell(cmdTimeout, nil, "", batch(l.printedLine("ssh -p "+fmt.Sprint(l.proxyPort)+" -i"))+" 'echo static-ok'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(Equal("static-ok\n"))
	})
})

var _ = Describe("scripts/run-local in the foreground", func() {
	It("stops every process it started on Ctrl-C (SIGINT to its process group)", func() {
		l := newLocalRun()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "run-local"))
		cmd.Env = append(os.Environ(), l.env()...)
		// Its own process group, like a job in a terminal: the "Ctrl-C" reaches every member.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.WaitDelay = 5 * time.Second
		var out strings.Builder
		cmd.Stdout = &out
		Expect(cmd.Start()).To(Succeed())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		DeferCleanup(func() {
			// Whatever happened above, leave nothing behind.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			l.script(time.Minute, "stop")
		})

		Eventually(func() error {
			select {
			case err := <-exited:
				exited <- err
				return StopTrying(fmt.Sprintf("run-local exited before ready: %v\n%s", err, out.String()))
			default:
			}
			_, err := os.Stat(filepath.Join(l.state, "ready"))
			return err
		}, 5*time.Minute, 200*time.Millisecond).Should(Succeed())
		Expect(strings.Split(l.ourProcesses(), "\n")).To(HaveLen(2))

		Expect(syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)).To(Succeed())
		Eventually(exited, 30*time.Second).Should(Receive())
		Eventually(l.ourProcesses, 10*time.Second, 100*time.Millisecond).Should(BeEmpty())
		Expect(filepath.Join(l.state, "ready")).NotTo(BeAnExistingFile())
	})
})

var _ = Describe("scripts/run-local --ws (SSH over WebSocket)", Ordered, func() {
	var l *localRun

	BeforeAll(func() {
		l = newLocalRun()
		l.start("--ws")
	})

	It("prints ProxyCommand forms of ssh, scp and sftp through app-ssh-ws that work as printed", func() {
		line := l.printedLine("ssh -o ProxyCommand=")
		Expect(line).To(ContainSubstring(fmt.Sprintf("app-ssh-ws --ca-cert %s wss://127.0.0.1:%d'", filepath.Join(l.state, "ws_ca.crt"), l.wsPort)))
		r := shell(cmdTimeout, nil, "", batch(line)+" 'echo ws-pasted-ok'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(Equal("ws-pasted-ok\n"))

		tmp := GinkgoT().TempDir()
		writeTree(filepath.Join(tmp, "some-dir"))
		dest := filepath.Join(tmp, "dest")
		Expect(os.Mkdir(dest, 0o755)).To(Succeed())
		scpLine := l.printedLine("scp -o ProxyCommand=")
		pasted := strings.Replace(batch(scpLine), "127.0.0.1:/tmp/", "127.0.0.1:"+dest+"/", 1)
		r = run(cmdTimeout, nil, "", "bash", "-c", "cd "+quote(tmp)+" && "+pasted)
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		expectSameTree(filepath.Join(tmp, "some-dir"), filepath.Join(dest, "some-dir"))

		r = shell(cmdTimeout, nil, "ls "+dest+"/some-dir\n", batch(l.printedLine("sftp -o ProxyCommand=")))
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(ContainSubstring("a.txt"))
	})

	It("logs the WebSocket sessions with transport websocket", func() {
		log, err := os.ReadFile(filepath.Join(l.state, "logs", "proxy.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(log)).To(ContainSubstring(`"transport":"websocket"`))
	})
})

var _ = Describe("scripts/run-local --ws --cf (SSH over WebSocket with cf auth)", Ordered, func() {
	var l *localRun

	BeforeAll(func() {
		l = newLocalRun()
		l.start("--ws", "--cf")
	})

	It("lets the printed cf: ProxyCommand command in with a one-time code", func() {
		line := strings.TrimSpace(strings.TrimPrefix(l.printedLine("over WebSocket: ssh "), "over WebSocket:"))
		Expect(line).To(ContainSubstring(fmt.Sprintf("wss://127.0.0.1:%d'", l.wsPort)))
		r := shell(cmdTimeout, askpassEnv(l.code()), "", strings.Replace(line, "ssh ", "ssh -o ConnectTimeout=20 -o NumberOfPasswordPrompts=1 ", 1)+" 'echo cf-ws-ok'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(Equal("cf-ws-ok\n"))
	})
})
