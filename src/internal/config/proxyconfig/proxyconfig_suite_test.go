package proxyconfig_test

import (
	"testing"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestProxyConfig(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Proxy Config Suite")
}

// validate is Resolve's problems.
func validate(c *proxyconfig.Config) []error {
	_, errs := c.Resolve()
	return errs
}

// resolved is Resolve's result, which must have no problem.
func resolved(c *proxyconfig.Config) *proxyconfig.Resolved {
	r, errs := c.Resolve()
	ExpectWithOffset(1, errs).To(BeEmpty())
	return r
}

// staticErrors is ResolveStaticTargets' problems.
func staticErrors(targets []proxyconfig.StaticTarget, passwordAuth bool) []error {
	_, errs := proxyconfig.ResolveStaticTargets(targets, passwordAuth)
	return errs
}

// resolvedHardening is the hardening keys of c resolved, which must have no problem.
func resolvedHardening(c *proxyconfig.Config) *proxyconfig.Resolved {
	r, errs := proxyconfig.ResolveHardening(c)
	ExpectWithOffset(1, errs).To(BeEmpty())
	return r
}

// resolvedWS is the WebSocket keys resolved alone, which must have no problem.
func resolvedWS(c *proxyconfig.Config) *proxyconfig.Resolved {
	r, errs := proxyconfig.ResolveWebSocket(c)
	ExpectWithOffset(1, errs).To(BeEmpty())
	return r
}
