package e2e_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

// The checks of cf-acceptance-tests' SSH suite (ssh/ssh.go), against `scripts/run-local --cf`:
// `cf ssh` there is OpenSSH here with a one-time code from `scripts/run-local code` (as
// `cf ssh-code`), and `cf logs --recent APP` is `scripts/run-local logs`.
var _ = Describe("CATS-style SSH checks against scripts/run-local --cf", Ordered, func() {
	var (
		l       *localRun
		cf      client
		appGUID string
	)

	// recentLogs is `cf logs --recent APP`.
	recentLogs := func() string {
		r := l.script(time.Minute, "logs")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		return r.stdout
	}
	accessLine := regexp.MustCompile(`(?m)^\S+ \[SSH/0\] OUT Successful remote access by (127\.0\.0\.1:\d+)$`)
	endedLine := regexp.MustCompile(`(?m)^\S+ \[SSH/0\] OUT Remote access ended for (127\.0\.0\.1:\d+)$`)
	accesses := func() int { return len(accessLine.FindAllString(recentLogs(), -1)) }
	// expectLogged waits until every session so far shows one access line and one end line,
	// for the same client address, n sessions in all.
	expectLogged := func(n int) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			logs := recentLogs()
			a, e := accessLine.FindAllStringSubmatch(logs, -1), endedLine.FindAllStringSubmatch(logs, -1)
			g.Expect(a).To(HaveLen(n), logs)
			g.Expect(e).To(HaveLen(n), logs)
			var started, ended []string
			for i := range a {
				started, ended = append(started, a[i][1]), append(ended, e[i][1])
			}
			g.Expect(ended).To(ConsistOf(started))
		}, 30*time.Second, 500*time.Millisecond).Should(Succeed())
	}

	BeforeAll(func() {
		l = newLocalRun()
		l.start("--cf")
		cf, appGUID = l.cfClient()
		Expect(accesses()).To(Equal(0))
	})

	It("can execute a remote command in the container (env on stdout and stderr, exit status)", func() {
		r := cf.ssh("", "'/usr/bin/env && /usr/bin/env >&2'")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(MatchRegexp(`(?m)^PATH=`))
		Expect(r.stderr).To(MatchRegexp(`(?m)^PATH=`))
		r = cf.ssh("", "'exit 5'")
		Expect(r.err).To(MatchError(ContainSubstring("exit status 5")))
		expectLogged(2)
	})

	It("runs an interactive session when no command is provided (commands from stdin)", func() {
		r := cf.sshStdin("", "/usr/bin/env\nexit 0\n")
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(r.stdout).To(MatchRegexp(`(?m)^PATH=`))
		expectLogged(3)
	})

	It("copies files with scp and a one-time code", func() {
		dir := GinkgoT().TempDir()
		src := filepath.Join(dir, "in.txt")
		Expect(os.WriteFile(src, []byte("cats-scp\n"), 0o644)).To(Succeed())
		remote := filepath.Join(dir, "remote.txt")
		r := cf.scp(quote(src) + " " + quote("127.0.0.1:"+remote))
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		back := filepath.Join(dir, "back.txt")
		r = cf.scp(quote("127.0.0.1:"+remote) + " " + quote(back))
		Expect(r.err).NotTo(HaveOccurred(), r.String())
		Expect(os.ReadFile(back)).To(Equal([]byte("cats-scp\n")))
		expectLogged(5)
	})

	It("allows local port forwarding", func() {
		expectLocalForward(cf)
		expectLogged(6)
	})

	It("records successful ssh attempts (a Go SSH client with a one-time code)", func() {
		client, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.proxyPort)), &ssh.ClientConfig{
			User: "cf:" + appGUID + "/0", Auth: []ssh.AuthMethod{ssh.Password(l.code())},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		session, err := client.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := session.CombinedOutput("/usr/bin/env")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(MatchRegexp(`(?m)^PATH=`))
		Expect(client.Close()).To(Succeed())
		expectLogged(7)
	})

	It("writes nothing into the app's log stream for failed ssh attempts", func() {
		_, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(l.proxyPort)), &ssh.ClientConfig{
			User: "cf:" + appGUID + "/0", Auth: []ssh.AuthMethod{ssh.Password("not-a-code")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
		})
		Expect(err).To(HaveOccurred())
		Consistently(accesses, 3*time.Second, 500*time.Millisecond).Should(Equal(7))
		expectLogged(7)
	})
})
