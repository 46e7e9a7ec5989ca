package server

import (
	"testing"

	"github.com/app-ssh/app-ssh/internal/auth"
)

// Only refusals the client caused count against its source; platform faults and
// misconfigurations never do (a wrong Cloud Controller port must not lock everyone out).
func TestPenalisableBlamesOnlyTheClient(t *testing.T) {
	client := []string{auth.ReasonBadUsername, auth.ReasonInvalidCode, auth.ReasonInvalidCredential,
		auth.ReasonNotPermitted, auth.ReasonNoSuchApp, auth.ReasonSSHDisabled}
	platform := []string{auth.ReasonTokenRejected, auth.ReasonCCMisconfigured, auth.ReasonCCUnavailable,
		auth.ReasonUAAUnavailable, auth.ReasonBBSUnavailable, auth.ReasonNotRunning, auth.ReasonBackendDown,
		auth.ReasonNoScheme}
	for _, r := range client {
		if !penalisable(r) {
			t.Errorf("%q is the client's doing but is not penalised", r)
		}
	}
	for _, r := range platform {
		if penalisable(r) {
			t.Errorf("%q is a platform fault but is penalised", r)
		}
	}
	// A reason nobody classified (a new one, or the generic fallback) is never penalised.
	if penalisable(auth.ReasonOf(nil)) || penalisable("some future reason") {
		t.Error("an unclassified reason is penalised")
	}
	seen := map[string]bool{}
	for _, r := range append(client, platform...) {
		if seen[r] {
			t.Errorf("two Cloud Controller answers share the reason %q", r)
		}
		seen[r] = true
	}
}
