package policy

import (
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

func mustCompile(t *testing.T, p Policy) *Rules {
	t.Helper()
	r, errs := Compile(p)
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	return r
}

func directTCPIP(host string, port uint32) []byte {
	var b []byte
	b = append(b, payload.String(host)...)
	b = binary.BigEndian.AppendUint32(b, port)
	b = append(b, payload.String("127.0.0.1")...)
	return binary.BigEndian.AppendUint32(b, 50000)
}

func tcpipForward(host string, port uint32) []byte {
	return binary.BigEndian.AppendUint32(payload.String(host), port)
}

func env(name, value string) []byte {
	return append(payload.String(name), payload.String(value)...)
}

func TestPermitOpen(t *testing.T) {
	cases := []struct {
		list []string
		host string
		port uint32
		want bool
	}{
		{[]string{"any"}, "anything.example", 1, true},
		{[]string{"none"}, "127.0.0.1", 8080, false},
		{[]string{"127.0.0.1:8080"}, "127.0.0.1", 8080, true},
		{[]string{"127.0.0.1:8080"}, "127.0.0.1", 8081, false},
		{[]string{"127.0.0.1:8080"}, "localhost", 8080, false}, // no lookups, as OpenSSH
		{[]string{"127.0.0.1:*"}, "127.0.0.1", 22, true},
		{[]string{"*:5432"}, "db.internal", 5432, true},
		{[]string{"*:5432"}, "db.internal", 5433, false},
		{[]string{"*:*"}, "we!rd", 1, true}, // * is everything, as OpenSSH
		{[]string{"DB.Internal:5432"}, "db.INTERNAL", 5432, true},
		{[]string{"db.internal:5432"}, "db.internal.", 5432, true},
		{[]string{"*.apps.internal:8080"}, "my-app.apps.internal", 8080, true},
		{[]string{"*.apps.internal:8080"}, "apps.internal", 8080, false},
		{[]string{"db-?.internal:5432"}, "db-1.internal", 5432, true},
		{[]string{"db-?.internal:5432"}, "db-12.internal", 5432, false},
		// Address patterns match only canonical addresses, never names or numeric forms.
		{[]string{"10.0.*:5432"}, "10.0.3.4", 5432, true},
		{[]string{"10.0.*:5432"}, "10.0.3.4.nip.io", 5432, false},
		{[]string{"10.0.*:5432"}, "10.0.3.4.", 5432, false},
		{[]string{"127.*:80"}, "127.1", 80, false},
		{[]string{"127.0.0.1:80"}, "0x7f000001", 80, false},
		{[]string{"127.0.0.1:80"}, "127.000.000.001", 80, false},
		{[]string{"1*:80"}, "1.2.3.4", 80, true},
		// IPv6 in brackets, compared canonically.
		{[]string{"[::1]:8080"}, "::1", 8080, true},
		{[]string{"[::1]:8080"}, "0:0::1", 8080, true},
		{[]string{"[::1]:8080"}, "[::1]", 8080, true},
		{[]string{"[::1]:8080"}, "::2", 8080, false},
		{[]string{"[2001:db8::1]:443"}, "2001:DB8:0::1", 443, true},
		{[]string{"[::1]:8080"}, "fe80::1%eth0", 8080, false},
		{[]string{"127.0.0.1:80"}, "::ffff:127.0.0.1", 80, false},
		// Digits, dots and wildcards make an address pattern: it never matches names.
		{[]string{"*1:80"}, "10.0.0.1", 80, true},
		{[]string{"*1:80"}, "host1", 80, false},
		{[]string{"*.internal:80"}, "we!rd.internal", 80, false},
		{[]string{"127.0.0.1:8080", "db.internal:5432"}, "db.internal", 5432, true},
		{[]string{"127.0.0.1:8080", "db.internal:5432"}, "db.internal", 8080, false},
	}
	for _, c := range cases {
		p := Default()
		p.PermitOpen = c.list
		r := mustCompile(t, p)
		_, d := r.Channel(ChanDirectTCPIP, directTCPIP(c.host, c.port))
		if got := d == nil; got != c.want {
			t.Errorf("permit_open %v, %q:%d: allowed=%v, want %v (%v)", c.list, c.host, c.port, got, c.want, d)
		}
		if d != nil && (d.Kind != KindLocalForward || d.RejectionReason() != ssh.Prohibited || strings.Contains(d.Reason, "\n")) {
			t.Errorf("denial %+v: want kind local-forward, prohibited, one line", d)
		}
	}
}

func TestPermitListen(t *testing.T) {
	cases := []struct {
		list []string
		host string
		port uint32
		want bool
	}{
		{[]string{"8080"}, "localhost", 8080, true}, // bare port: any listen host
		{[]string{"8080"}, "", 8080, true},
		{[]string{"8080"}, "localhost", 8081, false},
		{[]string{"localhost:8080"}, "localhost", 8080, true},
		{[]string{"localhost:8080"}, "127.0.0.1", 8080, false}, // localhost is not 127.0.0.1
		{[]string{"localhost:8080"}, "", 8080, false},
		{[]string{"localhost:*"}, "LOCALHOST", 9, true},
		{[]string{"127.0.0.1:*"}, "127.0.0.1", 9, true},
		{[]string{"[::1]:*"}, "::1", 9, true},
		{[]string{"none"}, "localhost", 8080, false},
	}
	for _, c := range cases {
		p := Default()
		p.PermitListen = c.list
		r := mustCompile(t, p)
		_, d := r.GlobalRequest(ReqTCPIPForward, tcpipForward(c.host, c.port))
		if got := d == nil; got != c.want {
			t.Errorf("permit_listen %v, %q:%d: allowed=%v, want %v (%v)", c.list, c.host, c.port, got, c.want, d)
		}
		// The backend's forwarded-tcpip channels are held to the same list.
		fwd := directTCPIP(c.host, c.port)
		_, d = r.BackendChannel(ChanForwardedTCPIP, fwd)
		if got := d == nil; got != c.want {
			t.Errorf("forwarded-tcpip with permit_listen %v, %q:%d: allowed=%v, want %v (%v)", c.list, c.host, c.port, got, c.want, d)
		}
	}
}

func TestCompileErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		mut  func(*Policy)
		want string
	}{
		{func(p *Policy) { p.PermitOpen = nil }, "policy.permit_open: empty"},
		{func(p *Policy) { p.PermitOpen = []string{"any", "a:1"} }, `policy.permit_open[0]: "any" must be the only entry`},
		{func(p *Policy) { p.PermitOpen = []string{"db"} }, `policy.permit_open[0]: "db": missing :port`},
		{func(p *Policy) { p.PermitOpen = []string{"::1:80"} }, "policy.permit_open[0]: \"::1:80\": IPv6 addresses must be written in brackets"},
		{func(p *Policy) { p.PermitOpen = []string{"[::*]:80"} }, "not an IPv6 address"},
		{func(p *Policy) { p.PermitOpen = []string{"a:70000"} }, "port must be 0-65535 or *"},
		{func(p *Policy) { p.PermitOpen = []string{"10.0.0.256:1"} }, "not an IPv4 address"},
		{func(p *Policy) { p.PermitOpen = []string{"a/b:1"} }, "not a host name"},
		{func(p *Policy) { p.PermitOpen = []string{":1"} }, "empty host"},
		{func(p *Policy) { p.PermitListen = []string{"x"} }, "policy.permit_listen[0]"},
		{func(p *Policy) { p.AcceptEnv = []string{"A=B"} }, "policy.accept_env[0]: A=B: a name must not contain"},
		{func(p *Policy) { p.MaxSessionsPerUser = -1 }, "policy.max_sessions_per_user: must not be negative"},
		{func(p *Policy) { p.MaxSessionsPerConnection = 300 }, "policy.max_sessions_per_connection: must not exceed"},
		{func(p *Policy) { p.MaxSessionDuration = -time.Second }, "policy.max_session_duration: must not be negative"},
	}
	for _, c := range cases {
		p := Default()
		c.mut(&p)
		_, errs := Compile(p)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) || strings.Contains(errs[0].Error(), "\n") {
			t.Errorf("errors %v, want one line containing %q", errs, c.want)
		}
	}
	if _, errs := Compile(Default()); len(errs) != 0 {
		t.Errorf("default policy: %v", errs)
	}
}

func TestDefaultIsTodaysBehaviour(t *testing.T) {
	r := mustCompile(t, Default())
	for _, q := range []struct {
		typ  string
		data []byte
	}{
		{"shell", nil}, {"exec", payload.String("ls -la")}, {"exec", payload.String("scp -t /tmp")},
		{"subsystem", payload.String("sftp")}, {"subsystem", payload.String("netconf")},
		{"pty-req", nil}, {"env", env("LANG", "C.UTF-8")}, {"env", env("LC_ALL", "C")},
		{"env", env("TERM", "xterm")}, {"window-change", nil}, {"signal", payload.String("INT")},
		{"exec", []byte{0, 0}}, // malformed: relayed, the instance's sshd refuses it
	} {
		if _, d := r.SessionRequest(q.typ, q.data); d != nil {
			t.Errorf("default policy denies %s: %v", q.typ, d)
		}
	}
	for _, typ := range []string{ChanSession, ChanDirectTCPIP, ChanDirectStreamlocal} {
		if _, d := r.Channel(typ, []byte("unparsed")); d != nil {
			t.Errorf("default policy denies channel %s: %v", typ, d)
		}
	}
	if _, d := r.GlobalRequest(ReqTCPIPForward, tcpipForward("", 0)); d != nil {
		t.Errorf("default policy denies -R: %v", d)
	}
	if _, d := r.BackendChannel(ChanForwardedTCPIP, nil); d != nil {
		t.Errorf("default policy denies forwarded-tcpip: %v", d)
	}
	// The target is known for the audit log even when any destination is permitted.
	if c, d := r.Channel(ChanDirectTCPIP, directTCPIP("db.internal", 5432)); d != nil || c.Target != "db.internal:5432" {
		t.Errorf("channel %+v %v", c, d)
	}
	if c, d := r.BackendChannel(ChanForwardedTCPIP, directTCPIP("::1", 9000)); d != nil || c.Target != "[::1]:9000" {
		t.Errorf("forwarded %+v %v", c, d)
	}
	if l, d := r.GlobalRequest(ReqTCPIPForward, tcpipForward("localhost", 9000)); d != nil || l != "localhost:9000" {
		t.Errorf("listen %q %v", l, d)
	}
	if len(r.Warnings()) != 0 {
		t.Errorf("default warnings: %v", r.Warnings())
	}
}

func TestAgentAndX11AlwaysRefused(t *testing.T) {
	r := mustCompile(t, Default())
	for _, c := range []struct {
		d    *Denial
		kind Kind
	}{
		{second(r.SessionRequest(ReqAgent, nil)), KindAgent},
		{second(r.SessionRequest(ReqX11, nil)), KindX11},
		{second(r.Channel(ChanAgent, nil)), KindAgent},
		{second(r.Channel(ChanX11, nil)), KindX11},
		{second(r.BackendChannel(ChanAgent, nil)), KindAgent},
		{second(r.BackendChannel(ChanX11, nil)), KindX11},
		{second(r.Channel("tun@openssh.com", nil)), KindChannelType},
		{second(r.BackendChannel("session", nil)), KindChannelType},
	} {
		if c.d == nil || c.d.Kind != c.kind {
			t.Errorf("got %v, want a %s denial", c.d, c.kind)
		}
	}
}

func second[T any](_ T, d *Denial) *Denial { return d }

func TestSessionSwitches(t *testing.T) {
	cases := []struct {
		mut  func(*Policy)
		typ  string
		data []byte
		kind Kind // "" = allowed
		prog Program
	}{
		{func(p *Policy) { p.Shell = false }, "shell", nil, KindShell, ProgramShell},
		{func(p *Policy) { p.Shell = false }, "exec", payload.String("ls"), "", ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("ls"), KindExec, ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -t /tmp"), "", ProgramSCP},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -v -r -p -d -t -- /tmp/x"), "", ProgramSCP},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -prt /tmp"), "", ProgramSCP},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -f 'a file'"), "", ProgramSCP},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -t /tmp; rm -rf /"), KindExec, ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp -t $(id)"), KindExec, ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("/tmp/scp -t /tmp"), KindExec, ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", payload.String("scp a b:c"), KindExec, ProgramExec},
		{func(p *Policy) { p.Exec = false }, "exec", []byte{1}, KindMalformed, ProgramExec},
		{func(p *Policy) { p.SCP = false }, "exec", payload.String("scp -f /etc/passwd"), KindSCP, ProgramSCP},
		{func(p *Policy) { p.SCP = false }, "exec", payload.String("ls"), "", ProgramExec},
		{func(p *Policy) { p.SFTP = false }, "subsystem", payload.String("sftp"), KindSFTP, ProgramSFTP},
		{func(p *Policy) { p.SFTP = false }, "subsystem", payload.String("netconf"), "", ProgramSubsystem},
		{func(p *Policy) { p.OtherSubsystems = false }, "subsystem", payload.String("netconf"), KindSubsystem, ProgramSubsystem},
		{func(p *Policy) { p.OtherSubsystems = false }, "subsystem", payload.String("sftp"), "", ProgramSFTP},
		{func(p *Policy) { p.Pty = false }, "pty-req", nil, KindPty, ""},
		{func(p *Policy) {}, "env", env("LD_PRELOAD", "/tmp/x.so"), KindEnv, ""},
		{func(p *Policy) {}, "env", env("PATH", "/tmp"), KindEnv, ""},
		{func(p *Policy) {}, "env", env("BASH_ENV", "/tmp/x"), KindEnv, ""},
		{func(p *Policy) {}, "env", env("lang", "C"), KindEnv, ""}, // case-sensitive
		{func(p *Policy) {}, "env", env("LC_", "C"), "", ""},
		{func(p *Policy) {}, "env", []byte("junk"), KindMalformed, ""},
		{func(p *Policy) { p.AcceptEnv = []string{"*"} }, "env", env("LD_PRELOAD", "x"), "", ""},
		{func(p *Policy) { p.AcceptEnv = []string{"APP_?"} }, "env", env("APP_1", "x"), "", ""},
	}
	for i, c := range cases {
		p := Default()
		c.mut(&p)
		r := mustCompile(t, p)
		q, d := r.SessionRequest(c.typ, c.data)
		if (d == nil) != (c.kind == "") || d != nil && d.Kind != c.kind {
			t.Errorf("case %d (%s %q): denial %v, want kind %q", i, c.typ, c.data, d, c.kind)
		}
		if q.Program != c.prog {
			t.Errorf("case %d: program %q, want %q", i, q.Program, c.prog)
		}
		if d != nil && (strings.ContainsAny(d.Reason, "\r\n") || !strings.HasSuffix(d.StderrLine(), "\r\n")) {
			t.Errorf("case %d: reason not one line: %q", i, d.Reason)
		}
	}
}

func TestRequestsCarryNoEnvValue(t *testing.T) {
	r := mustCompile(t, Default())
	q, d := r.SessionRequest("env", env("LANG", "s3cr3t-value"))
	if d != nil || q.EnvName != "LANG" {
		t.Fatalf("got %+v %v", q, d)
	}
	q, d = r.SessionRequest("env", env("SECRET_TOKEN", "s3cr3t-value"))
	if d == nil || strings.Contains(d.Reason, "s3cr3t") || strings.Contains(strings.ToLower(q.Command+q.Term), "s3cr3t") {
		t.Fatalf("value leaked: %+v %v", q, d)
	}
}

func TestReasonsAreCappedAndQuoted(t *testing.T) {
	p := Default()
	p.PermitOpen = []string{"none"}
	p.OtherSubsystems = false
	r := mustCompile(t, p)
	_, d := r.Channel(ChanDirectTCPIP, directTCPIP(strings.Repeat("a", 1000)+".x", 80))
	if d == nil || len(d.Reason) > 300 {
		t.Errorf("uncapped: %v", d)
	}
	_, d = r.Channel("evil\ntype", nil)
	if d == nil || strings.Contains(d.Reason, "\n") {
		t.Errorf("not one line: %q", d.Reason)
	}
}

func TestWarnings(t *testing.T) {
	p := Default()
	p.Exec = false
	p.AcceptEnv = []string{"LD_*"}
	p.LocalForwarding = false
	p.PermitOpen = []string{"127.0.0.1:8080"}
	w := mustCompile(t, p).Warnings()
	if len(w) != 2 || !strings.HasPrefix(w[0], "policy.accept_env: accepts LD_PRELOAD") || !strings.HasPrefix(w[1], "policy.permit_open:") {
		t.Errorf("warnings %q", w)
	}
	p = Default()
	p.LocalForwarding = false
	r := mustCompile(t, p)
	if _, d := r.Channel(ChanDirectTCPIP, directTCPIP("127.0.0.1", 1)); d == nil || d.Kind != KindLocalForward {
		t.Errorf("local_forwarding false: %v", d)
	}
	p = Default()
	p.RemoteForwarding = false
	r = mustCompile(t, p)
	if _, d := r.GlobalRequest(ReqTCPIPForward, tcpipForward("localhost", 1)); d == nil || d.Kind != KindRemoteForward {
		t.Errorf("remote_forwarding false: %v", d)
	}
	if _, d := r.GlobalRequest("keepalive@openssh.com", nil); d != nil {
		t.Errorf("keepalive denied: %v", d)
	}
}

func TestConnCounts(t *testing.T) {
	p := Default()
	p.MaxSessionsPerConnection = 2
	p.MaxChannelsPerConnection = 3
	c := mustCompile(t, p).NewConn()
	r1, d1 := c.Acquire(ChanSession)
	_, d2 := c.Acquire(ChanSession)
	_, d3 := c.Acquire(ChanSession)
	if d1 != nil || d2 != nil || d3 == nil || d3.Kind != KindSessionsPerConn || d3.RejectionReason() != ssh.ResourceShortage {
		t.Fatalf("sessions: %v %v %v", d1, d2, d3)
	}
	_, d4 := c.Acquire(ChanDirectTCPIP)
	_, d5 := c.Acquire(ChanDirectTCPIP)
	if d4 != nil || d5 == nil || d5.Kind != KindChannelsPerConn {
		t.Fatalf("channels: %v %v", d4, d5)
	}
	r1()
	r1() // idempotent
	if ch, s := c.Open(); ch != 2 || s != 1 {
		t.Fatalf("open %d/%d, want 2/1", ch, s)
	}
	if _, d := c.Acquire(ChanSession); d != nil {
		t.Fatalf("after release: %v", d)
	}
}

func TestLimiter(t *testing.T) {
	p := Default()
	if mustCompile(t, p).NewLimiter() != nil {
		t.Fatal("no caps: want nil limiter")
	}
	p.MaxSessionsPerUser = 2
	p.MaxSessionsPerInstance = 3
	l := mustCompile(t, p).NewLimiter()
	a1, _ := l.Acquire("alice", "i1")
	_, d := l.Acquire("alice", "i2")
	if d != nil {
		t.Fatal(d)
	}
	if _, d = l.Acquire("alice", "i3"); d == nil || d.Kind != KindSessionsPerUser {
		t.Fatalf("user cap: %v", d)
	}
	l.Acquire("bob", "i1")
	l.Acquire("carol", "i1")
	if _, d = l.Acquire("dave", "i1"); d == nil || d.Kind != KindSessionsPerInst {
		t.Fatalf("instance cap: %v", d)
	}
	a1()
	a1()
	if u, i := l.Count("alice", "i1"); u != 1 || i != 2 {
		t.Fatalf("counts %d %d", u, i)
	}
	if _, d = l.Acquire("", "i9"); d != nil {
		t.Fatal(d)
	}

	// Concurrent acquires never exceed the cap.
	p.MaxSessionsPerUser = 5
	p.MaxSessionsPerInstance = 0
	l = mustCompile(t, p).NewLimiter()
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 100 {
		wg.Go(func() {
			if _, d := l.Acquire("u", "x"); d == nil {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if granted != 5 {
		t.Fatalf("granted %d, want 5", granted)
	}
}

func TestDurationDenial(t *testing.T) {
	p := Default()
	p.MaxSessionDuration = 90 * time.Second
	r := mustCompile(t, p)
	if r.MaxSessionDuration() != 90*time.Second || r.SessionDurationDenial().Kind != KindMaxSessionDuration ||
		!strings.Contains(r.SessionDurationDenial().Reason, "1m30s") {
		t.Fatalf("%v", r.SessionDurationDenial())
	}
}

func TestAnswers(t *testing.T) {
	for k, want := range map[Kind]Answer{KindShell: AnswerExit, KindExec: AnswerExit, KindSCP: AnswerExit, KindSFTP: AnswerExit,
		KindSubsystem: AnswerExit, KindMaxSessionDuration: AnswerExit, KindPty: AnswerDefer, KindEnv: AnswerFail,
		KindAgent: AnswerFail, KindX11: AnswerFail, KindMalformed: AnswerFail} {
		if got := (&Denial{Kind: k}).Answer(); got != want {
			t.Errorf("%s: answer %d, want %d", k, got, want)
		}
	}
}

// BenchmarkDecisions: the cost of the decisions taken per channel open and per request.
func BenchmarkDecisions(b *testing.B) {
	p := Default()
	p.PermitOpen = []string{"127.0.0.1:8080", "10.0.16.*:5432", "*.service.internal:*", "[fd00::5]:443", "db-?.internal:5432"}
	r, _ := Compile(p)
	fwd := directTCPIP("db-3.internal", 5432)
	e := env("LC_ALL", "C.UTF-8")
	exec := payload.String("scp -p -t -- /home/vcap/app/file.txt")
	b.ReportAllocs()
	for b.Loop() {
		r.Channel(ChanDirectTCPIP, fwd)
		r.SessionRequest("env", e)
		r.SessionRequest("exec", exec)
	}
}

func TestSessionDefersPtyDenial(t *testing.T) {
	pty := append(payload.String("xterm"), make([]byte, 16)...)
	pty = append(pty, payload.String("")...)

	p := Default()
	p.Pty = false
	s := mustCompile(t, p).NewSession()
	_, d := s.Request("pty-req", pty)
	if d == nil || d.Answer() != AnswerDefer {
		t.Fatalf("pty-req: %v", d)
	}
	if _, d := s.Request("env", env("LANG", "C")); d != nil {
		t.Fatalf("env after refused pty: %v", d)
	}
	_, d = s.Request("shell", nil)
	if d == nil || d.Kind != KindPty || d.Answer() != AnswerExit || !strings.Contains(d.Reason, "pty") {
		t.Fatalf("shell after refused pty: %+v", d)
	}
	if prog, hasPty := s.Started(); prog != "" || hasPty || s.Recorded() {
		t.Fatalf("started %q pty %v", prog, hasPty)
	}

	s = mustCompile(t, Default()).NewSession()
	s.Request("pty-req", pty)
	if _, d := s.Request("shell", nil); d != nil {
		t.Fatal(d)
	}
	if !s.Recorded() {
		t.Fatal("shell with pty not recorded")
	}
	s = mustCompile(t, Default()).NewSession()
	s.Request("pty-req", pty)
	s.Request("subsystem", payload.String("sftp"))
	if prog, _ := s.Started(); prog != ProgramSFTP || s.Recorded() {
		t.Fatalf("sftp: %q recorded %v", prog, s.Recorded())
	}
	s = mustCompile(t, Default()).NewSession()
	s.Request("exec", payload.String("ls"))
	if s.Recorded() {
		t.Fatal("exec without pty recorded")
	}
}
