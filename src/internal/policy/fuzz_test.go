package policy

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzPermits: compiling any pattern never panics, and a compiled non-"*" address pattern
// never matches a host that is not a canonical address of its family.
func FuzzPermits(f *testing.F) {
	for _, s := range [][2]string{{"127.0.0.1:8080", "127.0.0.1"}, {"*.internal:*", "db.internal"},
		{"[::1]:80", "0::1"}, {"10.*:1", "10.1.2.3.evil"}, {"8080", ""}, {"a?c:1", "abc"}} {
		f.Add(s[0], s[1], uint32(80))
	}
	f.Fuzz(func(t *testing.T, pattern, host string, port uint32) {
		l, errs := compileList("k", []string{pattern}, true)
		if len(errs) > 0 {
			return
		}
		ok := l.permits(host, port)
		if l.any || len(l.entries) == 0 {
			return
		}
		e := l.entries[0]
		if !ok || e.anyHost {
			return
		}
		switch e.class {
		case classIPv4:
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
				t.Fatalf("IPv4 pattern %q matched non-address %q", pattern, host)
			}
		case classIPv6:
			h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
			if a, err := netip.ParseAddr(h); err != nil || !a.Is6() || a.String() != e.host {
				t.Fatalf("IPv6 pattern %q matched %q", pattern, host)
			}
		case className:
			if _, err := netip.ParseAddr(strings.TrimSuffix(host, ".")); err == nil {
				t.Fatalf("name pattern %q matched address %q", pattern, host)
			}
		}
	})
}

// FuzzGlob checks glob against a simple recursive reference.
func FuzzGlob(f *testing.F) {
	f.Add("a*b?c", "axxbyc")
	f.Add("**", "")
	f.Fuzz(func(t *testing.T, p, s string) {
		if len(p) > 12 || len(s) > 24 {
			return
		}
		if glob(p, s) != ref(p, s) {
			t.Fatalf("glob(%q, %q) = %v", p, s, glob(p, s))
		}
	})
}

func ref(p, s string) bool {
	if p == "" {
		return s == ""
	}
	switch p[0] {
	case '*':
		return ref(p[1:], s) || s != "" && ref(p, s[1:])
	case '?':
		return s != "" && ref(p[1:], s[1:])
	}
	return s != "" && s[0] == p[0] && ref(p[1:], s[1:])
}

// FuzzDecisions feeds client-controlled payloads to every decision under a restrictive policy:
// no panic, and every denial is one capped line.
func FuzzDecisions(f *testing.F) {
	f.Add("direct-tcpip", []byte("\x00\x00\x00\x09127.0.0.1\x00\x00\x1f\x90\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add("env", []byte("\x00\x00\x00\x01A\x00\x00\x00\x01B"))
	f.Add("exec", []byte("\x00\x00\x00\x06scp -t"))
	p := Default()
	p.Exec, p.SFTP, p.OtherSubsystems, p.Pty = false, false, false, false
	p.PermitOpen = []string{"127.0.0.1:8080", "*.internal:*", "[::1]:22"}
	p.PermitListen = []string{"localhost:9000"}
	r, errs := Compile(p)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		var ds []*Denial
		_, d := r.Channel(typ, data)
		ds = append(ds, d)
		_, d = r.BackendChannel(typ, data)
		ds = append(ds, d)
		_, d = r.GlobalRequest(typ, data)
		ds = append(ds, d)
		_, d = r.SessionRequest(typ, data)
		ds = append(ds, d)
		for _, d := range ds {
			if d != nil && (len(d.Reason) > 400 || strings.ContainsAny(d.Reason, "\r\n")) {
				t.Fatalf("reason %q", d.Reason)
			}
		}
	})
}
