package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/recording"
)

// The worked example of docs/policy.md, as the proxy config's `policy:` and `recording:`
// blocks: keys decode onto the defaults, and the example does what the docs say.
const workedExample = `
policy:
  sftp: false
  remote_forwarding: false
  permit_open: ["127.0.0.1:8080", "10.0.16.5:5432"]
  max_sessions_per_user: 2
recording:
  enabled: true
  directory: /var/vcap/store/ssh_proxy/recordings
`

func TestWorkedExampleYAML(t *testing.T) {
	var cfg struct {
		Policy    Policy           `yaml:"policy"`
		Recording recording.Config `yaml:"recording"`
	}
	cfg.Policy, cfg.Recording = Default(), recording.DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(workedExample))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.SFTP, want.RemoteForwarding = false, false
	want.PermitOpen = []string{"127.0.0.1:8080", "10.0.16.5:5432"}
	want.MaxSessionsPerUser = 2
	if !reflect.DeepEqual(cfg.Policy, want) {
		t.Fatalf("decoded %+v\nwant    %+v", cfg.Policy, want)
	}
	if errs := cfg.Recording.Validate(); len(errs) > 0 || !cfg.Recording.Enabled || cfg.Recording.MaxFileBytes != recording.DefaultMaxFileBytes {
		t.Fatalf("recording %+v %v", cfg.Recording, errs)
	}
	r := mustCompile(t, cfg.Policy)
	checks := []struct {
		what string
		d    *Denial
		kind Kind
	}{
		{"-L to the app", second(r.Channel(ChanDirectTCPIP, directTCPIP("127.0.0.1", 8080))), ""},
		{"-L to the database", second(r.Channel(ChanDirectTCPIP, directTCPIP("10.0.16.5", 5432))), ""},
		{"-L elsewhere", second(r.Channel(ChanDirectTCPIP, directTCPIP("10.0.16.6", 5432))), KindLocalForward},
		{"-D to a web site", second(r.Channel(ChanDirectTCPIP, directTCPIP("example.com", 443))), KindLocalForward},
		{"-R", second(r.GlobalRequest(ReqTCPIPForward, tcpipForward("localhost", 9000))), KindRemoteForward},
		{"sftp", second(r.SessionRequest("subsystem", []byte("\x00\x00\x00\x04sftp"))), KindSFTP},
		{"shell", second(r.SessionRequest("shell", nil)), ""},
	}
	for _, c := range checks {
		if (c.d == nil) != (c.kind == "") || c.d != nil && c.d.Kind != c.kind {
			t.Errorf("%s: %v, want kind %q", c.what, c.d, c.kind)
		}
	}
	l := r.NewLimiter()
	l.Acquire("user-1", "i0")
	l.Acquire("user-1", "i1")
	if _, d := l.Acquire("user-1", "i2"); d == nil || d.Kind != KindSessionsPerUser {
		t.Errorf("third session: %v", d)
	}
	if r.MaxSessionDuration() != 0*time.Second {
		t.Error("duration")
	}
}
