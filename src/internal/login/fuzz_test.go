package login

import (
	"testing"
)

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"cf:app/0", "diego:pg-1/12", "cf:/0", "cf:a/01", "cf:a/2147483648", "x:y/z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUsername(s)
		if err != nil {
			return
		}
		if u.String() != s {
			t.Fatalf("%q parsed to %+v which renders as %q", s, u, u.String())
		}
		if u.Index < 0 || u.Index > maxIndex || u.GUID == "" {
			t.Fatalf("%q parsed to out-of-range %+v", s, u)
		}
	})
}
