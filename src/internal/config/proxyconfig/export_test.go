package proxyconfig

import "fmt"

// ResolveHardening resolves the hardening keys alone (the rest of a default config does not
// resolve: it names no host key).
func ResolveHardening(c *Config) (*Resolved, []error) {
	r := &Resolved{Config: c}
	var errs []error
	c.Hardening.resolve(r, func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	})
	return r, errs
}

// ResolveWebSocket resolves the WebSocket keys alone.
func ResolveWebSocket(c *Config) (*Resolved, []error) {
	r := &Resolved{Config: c}
	var errs []error
	c.WebSocket.resolve(r, func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	})
	return r, errs
}
