package hardening_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// After every spec of this process: no log or audit file the proxies (and the sshds behind them)
// wrote holds a private key, a password, a one-time code or a token.
var _ = AfterSuite(func() {
	secrets.Lock()
	defer secrets.Unlock()
	Expect(secrets.logs).NotTo(BeEmpty())
	Expect(secrets.values).NotTo(BeEmpty())
	for i, text := range secrets.logs {
		Expect(text).NotTo(ContainSubstring("PRIVATE KEY"), "log %d", i)
		// A JWT is two base64url JSON objects and a signature: "eyJ…" (header) "." "eyJ…" (claims).
		// A bare "eyJ" also turns up by chance inside a base64 key fingerprint.
		Expect(text).NotTo(MatchRegexp(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+`), "log %d holds what looks like a JWT", i)
		Expect(strings.ToLower(text)).NotTo(ContainSubstring("bearer "), "log %d", i)
		for _, v := range secrets.values {
			// PEM keys are checked line by line: any base64 line of one is a leak.
			for _, line := range strings.Split(v, "\n") {
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
					Expect(text).NotTo(ContainSubstring(line), "log %d leaks a secret", i)
				}
			}
		}
	}
})
