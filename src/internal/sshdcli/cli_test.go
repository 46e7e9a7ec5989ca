package sshdcli

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
)

var _ = Describe("sshd command line", func() {
	runArgs := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"sshd"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	It("prints the version", func() {
		code, out, _ := runArgs("-version")
		Expect(code).To(Equal(0))
		Expect(strings.TrimSpace(out)).NotTo(BeEmpty())
	})

	It("exits 2 with one line naming an unknown or malformed flag", func() {
		code, _, errOut := runArgs("-nosuchflag")
		Expect(code).To(Equal(2))
		Expect(strings.Count(errOut, "\n")).To(Equal(1))
		Expect(errOut).To(ContainSubstring("nosuchflag"))

		code, _, errOut = runArgs("-allowUnauthenticatedClients=perhaps")
		Expect(code).To(Equal(2))
		Expect(strings.Count(errOut, "\n")).To(Equal(1))
		Expect(errOut).To(ContainSubstring("allowUnauthenticatedClients"))

		code, _, errOut = runArgs("-allowUnauthenticatedClients", "stray")
		Expect(code).To(Equal(2))
		Expect(errOut).To(ContainSubstring("stray"))
	})

	It("accepts diego-sshd's -debugAddr, -timeFormat, -redactSecrets and -redactPatterns, refusing bad values", func() {
		f := newFlags()
		Expect(f.fs.Parse([]string{"--debugAddr=127.0.0.1:17017", "--timeFormat=rfc3339", "--redactSecrets",
			"--redactPatterns=a+", "--redactPatterns=b+"})).To(Succeed())
		Expect(f.redactSecrets).To(BeTrue())
		Expect([]string(f.redactPatterns)).To(Equal([]string{"a+", "b+"}))
		code, _, errOut := runArgs("-timeFormat=sundial", "-allowUnauthenticatedClients")
		Expect(code).To(Equal(2))
		Expect(errOut).To(HavePrefix("-timeFormat: "))
		code, _, errOut = runArgs("-redactPatterns=(", "-allowUnauthenticatedClients")
		Expect(code).To(Equal(2))
		Expect(errOut).To(HavePrefix("-redactPatterns: "))
	})

	// A daemon that cannot listen logs why at fatal level and exits 1; the flags decide how.
	Describe("logging flags, honoured", func() {
		var busy string
		BeforeEach(func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			busy = ln.Addr().String()
		})
		logLines := func(out string) []map[string]any {
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				var m map[string]any
				Expect(json.Unmarshal([]byte(l), &m)).To(Succeed(), l)
				lines = append(lines, m)
			}
			return lines
		}

		It("-logLevel=fatal (what Cloud Controller passes) writes fatal lines only", func() {
			code, out, _ := runArgs("-address="+busy, "-allowUnauthenticatedClients", "-logLevel=fatal")
			Expect(code).To(Equal(1))
			lines := logLines(out)
			Expect(lines).To(HaveLen(1), out)
			Expect(lines[0]).To(And(HaveKeyWithValue("message", "sshd.listen-failed"), HaveKeyWithValue("log_level", 3.0),
				HaveKeyWithValue("source", "sshd"), HaveKey("timestamp"), HaveKey("data")))
		})

		It("-timeFormat=rfc3339 writes lager's RFC 3339 form", func() {
			_, out, _ := runArgs("-address="+busy, "-allowUnauthenticatedClients", "-logLevel=fatal", "-timeFormat=rfc3339")
			line := logLines(out)[0]
			Expect(line).To(HaveKeyWithValue("level", "fatal"))
			Expect(line["timestamp"]).To(MatchRegexp(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`))
		})

		It("-redactSecrets with -redactPatterns scrubs matching values", func() {
			port := busy[strings.LastIndex(busy, ":")+1:]
			_, out, _ := runArgs("-address="+busy, "-allowUnauthenticatedClients", "-logLevel=fatal",
				"-redactSecrets", "-redactPatterns=127\\.0\\.0\\.1:"+port)
			Expect(out).NotTo(ContainSubstring(busy))
			Expect(out).To(ContainSubstring("REDACTED"))
			_, out, _ = runArgs("-address="+busy, "-allowUnauthenticatedClients", "-logLevel=fatal")
			Expect(out).To(ContainSubstring(busy))
		})
	})

	It("validates flags without a config file under their flag names", func() {
		code, _, errOut := runArgs("-logLevel=loud", "-address=x")
		Expect(code).To(Equal(2))
		Expect(errOut).To(ContainSubstring("-logLevel: "))
		Expect(errOut).To(ContainSubstring("-address: "))
		Expect(errOut).To(ContainSubstring("-authorizedKey: "))
	})

	It("lets only explicitly given flags override the file, naming file keys otherwise", func() {
		path := filepath.Join(GinkgoT().TempDir(), "sshd.yml")
		Expect(os.WriteFile(path, []byte("address: 0.0.0.0:2022\nlog_level: debug\nallowed_ciphers: [rot13]\n"), 0o644)).To(Succeed())
		cfg, probs := sshdconfig.Load(path)
		Expect(probs).To(BeEmpty())
		f := newFlags()
		Expect(f.fs.Parse([]string{"-config=" + path, "-logLevel=error", "-allowUnauthenticatedClients"})).To(Succeed())
		set := map[string]bool{}
		for _, n := range []string{"config", "logLevel", "allowUnauthenticatedClients"} {
			set[n] = true
		}
		names := sshdconfig.YAMLNames
		f.apply(&cfg, &names, set, false)
		Expect(cfg.Address).To(Equal("0.0.0.0:2022"), "the -address default does not override the file")
		Expect(cfg.LogLevel).To(Equal("error"))
		Expect(cfg.AllowUnauthenticatedClients).To(BeTrue())
		_, vp := cfg.Validate(names)
		Expect(vp).To(HaveLen(1))
		Expect(vp[0].Key).To(Equal("allowed_ciphers"))
	})

	It("checks config files", func() {
		path := filepath.Join(GinkgoT().TempDir(), "sshd.yml")
		Expect(os.WriteFile(path, []byte("allow_unauthenticated_clients: true\n"), 0o644)).To(Succeed())
		code, _, _ := runArgs("-check-config", path)
		Expect(code).To(Equal(0))
		Expect(os.WriteFile(path, []byte("keepalive_interval: -1s\nlog_level: loud\n"), 0o644)).To(Succeed())
		code, _, errOut := runArgs("-check-config", path)
		Expect(code).To(Equal(2))
		Expect(strings.Split(strings.TrimSpace(errOut), "\n")).To(ConsistOf(
			HavePrefix("keepalive_interval: "), HavePrefix("log_level: "), HavePrefix("authorized_keys: ")))
	})
})
