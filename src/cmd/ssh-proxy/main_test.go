package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
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

func TestPrintDefaultsReadsBackAsTheDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-print-defaults"}, &out, &errOut); code != 0 {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}
	cfg, err := proxyconfig.Parse(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	// Read over the defaults, the printed file must change nothing (slices aside, which come
	// back empty rather than nil).
	again, err := yaml.Marshal(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != out.String() || cfg.Keepalive != proxyconfig.Default().Keepalive {
		t.Fatalf("read back as\n%s\nprinted\n%s", again, out.String())
	}
	if !strings.Contains(out.String(), "idle_connection_timeout: 5m0s\n") {
		t.Fatalf("not the defaults:\n%s", out.String())
	}
}

// A start refuses a file exactly as -check-config does: one resolution for both.
func TestStartAndCheckConfigResolveAlike(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yml")
	missing := filepath.Join(t.TempDir(), "missing.crt")
	content := "host_key_files: [" + missing + "]\nenable_cf_auth: false\nmetrics: {address: 127.0.0.1:0, cert_file: " + missing + ", key_file: " + missing + ".key}\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var checkOut, checkErr, startOut, startErr bytes.Buffer
	checkCode := run([]string{"-check-config", file}, &checkOut, &checkErr)
	startCode := run([]string{"-config", file}, &startOut, &startErr)
	if checkCode != 2 || startCode != 2 {
		t.Fatalf("codes: -check-config %d, start %d; want 2 and 2", checkCode, startCode)
	}
	if checkErr.String() != startErr.String() || !strings.Contains(checkErr.String(), "metrics.cert_file: open "+missing) {
		t.Fatalf("-check-config said:\n%s\nthe start said:\n%s", checkErr.String(), startErr.String())
	}
}
