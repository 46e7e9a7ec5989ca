package target

import (
	"errors"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestStaticResolve(t *testing.T) {
	s, err := NewStatic([]StaticSpec{{
		Name: "web", Addresses: []string{"127.0.0.1:1", "127.0.0.1:2"},
		HostFingerprint: "SHA256:abc", User: "u", PrivateKeyPEM: []byte("pem"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve("web", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != "127.0.0.1:2" || got.Route.Fingerprint() != "SHA256:abc" || got.Route.User != "u" ||
		got.Route.PrivateKey != "pem" || got.TLS != nil || got.ProcessGUID != "web" || got.Index != 1 {
		t.Fatalf("unexpected target %s", got.Describe())
	}
	// A static target is no app: sessions to it write into no app's log stream.
	if got.LogTags != nil {
		t.Fatalf("static target has log tags %v", got.LogTags)
	}
	for _, c := range []struct {
		name string
		idx  int
	}{{"web", 2}, {"web", -1}, {"db", 0}} {
		if _, err := s.Resolve(c.name, c.idx); !errors.Is(err, ErrUnknownStaticTarget) {
			t.Errorf("Resolve(%s, %d) = %v, want ErrUnknownStaticTarget", c.name, c.idx, err)
		}
	}
}

func TestNewStaticRefusesIncompleteSpecs(t *testing.T) {
	full := StaticSpec{Name: "a", Addresses: []string{"h:1"}, HostFingerprint: "f", PrivateKeyPEM: []byte("k")}
	cases := map[string][]StaticSpec{
		"no name":        {{Addresses: full.Addresses, HostFingerprint: "f", PrivateKeyPEM: []byte("k")}},
		"no instances":   {{Name: "a", HostFingerprint: "f", PrivateKeyPEM: []byte("k")}},
		"no fingerprint": {{Name: "a", Addresses: full.Addresses, PrivateKeyPEM: []byte("k")}},
		"no key":         {{Name: "a", Addresses: full.Addresses, HostFingerprint: "f"}},
		"duplicate":      {full, full},
	}
	for name, specs := range cases {
		if _, err := NewStatic(specs); err == nil {
			t.Errorf("%s: NewStatic accepted it", name)
		}
	}
	if _, err := NewStatic([]StaticSpec{full}); err != nil {
		t.Errorf("full spec refused: %v", err)
	}
}

func TestLogTagsTravelInThePermissions(t *testing.T) {
	perms := &ssh.Permissions{Extensions: map[string]string{"other": "x"}}
	if LogTagsOf(perms) != nil {
		t.Fatal("tags before any were set")
	}
	SetLogTags(perms, nil)
	if _, ok := perms.Extensions[ExtLogTags]; ok {
		t.Fatal("nil tags were recorded")
	}
	SetLogTags(perms, map[string]string{"source_id": "app", "instance_id": "0"})
	if got := LogTagsOf(perms); got["source_id"] != "app" || got["instance_id"] != "0" || len(got) != 2 {
		t.Fatalf("LogTagsOf = %v", got)
	}
	perms.Extensions[ExtLogTags] = `{"instance_id":"0"}`
	if LogTagsOf(perms) != nil {
		t.Fatal("tags without a source_id name no stream")
	}
}
