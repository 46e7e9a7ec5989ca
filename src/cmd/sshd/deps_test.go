package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The sshd is copied into every app container: it must stay small and free of the proxy's
// Loggregator client (go-loggregator and gRPC), which only ssh-proxy links.
func TestSSHDDoesNotLinkLoggregator(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	banned := func(p string) bool {
		return strings.HasPrefix(p, "code.cloudfoundry.org/go-loggregator") || strings.HasPrefix(p, "google.golang.org/grpc")
	}
	for _, p := range deps(".") {
		if banned(p) {
			t.Errorf("cmd/sshd links %s", p)
		}
	}
	// The check itself works: ssh-proxy does link them.
	found := false
	for _, p := range deps("../ssh-proxy") {
		found = found || banned(p)
	}
	if !found {
		t.Fatal("go list -deps ../ssh-proxy shows no go-loggregator or gRPC package; the check above proves nothing")
	}
}
