package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// What upstream tolerated starts here too: -check-config lists it as warnings and exits 0.
func TestCheckConfigListsToleratedProblemsAndSucceeds(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "host_key")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "ssh_proxy.yml")
	content := "host_key_files: [" + key + "]\nenable_cf_auth: false\nenable_diego_auth: false\n" +
		"allowed_ciphers: [aes128-gcm@openssh.com, rot13-cbc]\nallowed_macs: [umac-128-etm@openssh.com, hmac-sha2-256-etm@openssh.com]\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-check-config", file}, &out, &errOut); code != 0 {
		t.Fatalf("code %d, want 0; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), ": ok") {
		t.Errorf("stdout %q", out.String())
	}
	want := []string{
		`warning: allowed_ciphers: ignoring cipher not implemented by golang.org/x/crypto/ssh: "rot13-cbc"`,
		`warning: allowed_macs: ignoring MAC not implemented by golang.org/x/crypto/ssh: "umac-128-etm@openssh.com"`,
		`warning: enable_cf_auth: no login scheme is enabled`,
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d warning lines, got:\n%s", len(want), errOut.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}
