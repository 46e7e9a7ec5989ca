package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/app-ssh/app-ssh/internal/version"
)

func TestRunFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-version"}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != version.Version {
		t.Fatalf("-version: code %d, out %q", code, out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-config FILE is required") {
		t.Fatalf("no flags: code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"-config", "x", "extra"}, &out, &errOut); code != 2 {
		t.Fatalf("extra argument: code %d", code)
	}
}

func TestCheckConfigNamesEachProblemOnItsOwnLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yml")
	content := "address: nope\nallowed_macs: [md5-please]\nenable_cf_auth: false\nenable_diego_auth: true\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-check-config", file}, &out, &errOut); code != 2 {
		t.Fatalf("code %d, want 2", code)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	for _, want := range []string{"address: ", `allowed_macs: no listed MAC is implemented ("md5-please")`, "diego_credentials: ", "host_key_files: ", "bbs.address: "} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", want, errOut.String())
		}
	}

	if err := os.WriteFile(file, []byte("bbs:\n  adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if code := run([]string{"-check-config", file}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "adress: unknown key") {
		t.Fatalf("unknown key: code %d, stderr %q", code, errOut.String())
	}
}

func TestCheckConfigReportsHardeningKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yml")
	content := "max_unauthenticated_connections: 0\nmax_connection_duration: -5s\nproxy_protocol: {enabled: true}\nkeepalive: {interval: 1s, count_max: 0}\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-check-config", file}, &out, &errOut); code != 2 {
		t.Fatalf("code %d, want 2", code)
	}
	for _, want := range []string{"max_unauthenticated_connections: ", "max_connection_duration: ", "proxy_protocol.allowed_cidrs: ", "keepalive.count_max: "} {
		if !strings.Contains(errOut.String(), "\n"+want) && !strings.HasPrefix(errOut.String(), want) {
			t.Errorf("no line starting %q in:\n%s", want, errOut.String())
		}
	}
}
