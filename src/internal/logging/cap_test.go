package logging_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/app-ssh/app-ssh/internal/logging"
)

func TestCapKeepsShortStrings(t *testing.T) {
	for _, s := range []string{"", "vcap", "cf:5a1f0c9e/0", strings.Repeat("x", logging.MaxAttrLen)} {
		if got := logging.Cap(s); got != s {
			t.Errorf("Cap(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestCapTruncatesWithMarker(t *testing.T) {
	s := strings.Repeat("a", 100<<10)
	got := logging.Cap(s)
	want := strings.Repeat("a", logging.MaxAttrLen) + "…[truncated 102144 bytes]"
	if got != want {
		t.Fatalf("Cap(100 KiB) = %q..., want %q...", got[:20], want[:20])
	}
	if len(got) > 300 {
		t.Errorf("capped length %d, want under 300", len(got))
	}
}

func TestCapCutsAtACharacterBoundary(t *testing.T) {
	// 255 ASCII bytes then a 3-byte character straddling the limit.
	s := strings.Repeat("a", logging.MaxAttrLen-1) + "€€€"
	got := logging.Cap(s)
	if !utf8.ValidString(got) {
		t.Fatalf("Cap produced invalid UTF-8: %q", got)
	}
	want := strings.Repeat("a", logging.MaxAttrLen-1) + "…[truncated 9 bytes]"
	if got != want {
		t.Errorf("Cap = %q, want %q", got[logging.MaxAttrLen-5:], want[logging.MaxAttrLen-5:])
	}
}

func TestCapReplacesInvalidUTF8(t *testing.T) {
	for _, s := range []string{"ab\xffcd", strings.Repeat("\xff", 1000)} {
		if got := logging.Cap(s); !utf8.ValidString(got) || len(got) > 300*3 {
			t.Errorf("Cap(%q...) = %q, want valid UTF-8 of bounded length", s[:4], got)
		}
	}
}

func TestCapErrorKeepsTheStartOfALongMessage(t *testing.T) {
	long := errors.New("ssh: no common algorithm for key exchange; peer offered: [" + strings.Repeat("x", 100<<10) + "]")
	got := logging.CapError(long)
	if !strings.HasPrefix(got, "ssh: no common algorithm for key exchange") || len(got) > logging.MaxErrorLen+40 {
		t.Errorf("CapError = %.60q... (%d bytes), want the start kept and at most %d bytes", got, len(got), logging.MaxErrorLen+40)
	}
}
