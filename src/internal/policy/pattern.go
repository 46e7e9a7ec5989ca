package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// hostClass says what a host string is. A pattern only ever matches hosts of its own class, so
// a wildcard written for addresses (10.0.*) cannot match a name that merely starts like one
// (10.0.0.1.attacker.example), and numeric forms a resolver may read as an address (127.1,
// 0x7f000001, 010.0.0.1) match nothing but the catch-all "*".
type hostClass uint8

const (
	classOdd   hostClass = iota // anything else: only "*" matches it
	classIPv4                   // a canonical dotted-quad IPv4 address
	classIPv6                   // an IPv6 address (compared in canonical form), without zone
	className                   // a DNS-style name whose last label is not numeric
	classEmpty                  // "" (a tcpip-forward on every address)
)

// classify returns a request host's class and its comparable form (canonical address,
// lower-cased name without a trailing dot).
func classify(h string) (hostClass, string) {
	if h == "" {
		return classEmpty, ""
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if a, err := netip.ParseAddr(h); err == nil {
		switch {
		case a.Zone() != "":
			return classOdd, h
		case a.Is4():
			if a.String() != h {
				return classOdd, h
			}
			return classIPv4, h
		default:
			return classIPv6, a.String()
		}
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if !validName(name) {
		return classOdd, h
	}
	return className, name
}

// validName: labels of letters, digits, '-' and '_' separated by single dots; the last label
// neither all decimal digits nor a 0x hex number (inet_aton would read those as an address).
func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	labels := strings.Split(n, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
		return false
	}
	return true
}

// anyPort is a pattern's "*" port.
const anyPort = -1

// hostPort is one compiled PermitOpen / PermitListen entry.
type hostPort struct {
	anyHost bool
	class   hostClass
	host    string // canonical address, or a lower-case glob over names / IPv4 text
	port    int    // anyPort or 0..65535
}

// patternList is a compiled allow-list: any (no restriction), none, or entries.
type patternList struct {
	any     bool
	entries []hostPort
}

// compileList parses a PermitOpen- or PermitListen-style list. listen allows a bare port
// (PermitListen's "port" form, meaning any listen host).
func compileList(key string, items []string, listen bool) (patternList, []error) {
	if len(items) == 0 {
		return patternList{}, []error{fmt.Errorf("%s: empty; list host:port patterns, or [any], or [none]", key)}
	}
	var errs []error
	var l patternList
	for i, it := range items {
		s := strings.TrimSpace(it)
		if s == "any" || s == "none" {
			if len(items) > 1 {
				errs = append(errs, fmt.Errorf("%s[%d]: %q must be the only entry", key, i, s))
				continue
			}
			l.any = s == "any"
			return l, nil
		}
		hp, err := parseHostPort(s, listen)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %q: %v", key, i, it, err))
			continue
		}
		l.entries = append(l.entries, hp)
	}
	return l, errs
}

func parseHostPort(s string, listen bool) (hostPort, error) {
	var host, port string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return hostPort{}, errors.New("unterminated [ in IPv6 address")
		}
		host, port = s[1:end], s[end+1:]
		if !strings.HasPrefix(port, ":") {
			return hostPort{}, errors.New("missing :port after ]")
		}
		port = port[1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return hostPort{}, errors.New("not an IPv6 address inside [ ] (no wildcards or zones)")
		}
		p, err := parsePort(port)
		if err != nil {
			return hostPort{}, err
		}
		return hostPort{class: classIPv6, host: a.String(), port: p}, nil
	case strings.Count(s, ":") == 0 && listen:
		host, port = "*", s
	case strings.Count(s, ":") == 1:
		i := strings.LastIndex(s, ":")
		host, port = s[:i], s[i+1:]
	case strings.Count(s, ":") == 0:
		return hostPort{}, errors.New("missing :port (host:port, [IPv6]:port)")
	default:
		return hostPort{}, errors.New("IPv6 addresses must be written in brackets: [addr]:port")
	}
	p, err := parsePort(port)
	if err != nil {
		return hostPort{}, err
	}
	if host == "*" {
		return hostPort{anyHost: true, port: p}, nil
	}
	if host == "" {
		return hostPort{}, errors.New("empty host (use * for any host)")
	}
	host = strings.ToLower(host)
	if strings.Trim(host, "0123456789.*?") == "" {
		if !strings.ContainsAny(host, "*?") {
			a, err := netip.ParseAddr(host)
			if err != nil || !a.Is4() {
				return hostPort{}, errors.New("not an IPv4 address (dotted quad, no leading zeros)")
			}
		}
		return hostPort{class: classIPv4, host: host, port: p}, nil
	}
	host = strings.TrimSuffix(host, ".")
	// With the wildcards replaced, the pattern must itself be a valid name.
	if !validName(strings.NewReplacer("*", "x", "?", "x").Replace(host)) {
		return hostPort{}, errors.New("not a host name, IPv4 address or * (letters, digits, '-', '_', '.', wildcards * and ?)")
	}
	return hostPort{class: className, host: host, port: p}, nil
}

func parsePort(s string) (int, error) {
	if s == "*" {
		return anyPort, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || strings.HasPrefix(s, "+") {
		return 0, errors.New("port must be 0-65535 or *")
	}
	return n, nil
}

// permits reports whether the list allows host:port.
func (l *patternList) permits(host string, port uint32) bool {
	if l.any {
		return true
	}
	if len(l.entries) == 0 {
		return false
	}
	class, norm := classify(host)
	for _, e := range l.entries {
		if e.port != anyPort && uint32(e.port) != port {
			continue
		}
		if e.anyHost {
			return true
		}
		if e.class != class {
			continue
		}
		if e.class == classIPv6 {
			if e.host == norm {
				return true
			}
			continue
		}
		if glob(e.host, norm) {
			return true
		}
	}
	return false
}

// glob matches s against pattern with '*' (any run, dots included) and '?' (one byte), as
// OpenSSH's match_pattern does. Iterative with single backtracking point: linear in practice.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
