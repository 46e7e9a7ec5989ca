package proxyconfig

import (
	"github.com/app-ssh/app-ssh/internal/policy"
	"github.com/app-ssh/app-ssh/internal/recording"
)

// PolicyConfig is the `policy:` and `recording:` blocks (docs/policy.md).
type PolicyConfig struct {
	Policy    policy.Policy    `yaml:"policy"`
	Recording recording.Config `yaml:"recording"`
}

// DefaultPolicyConfig is policy.Default() and recording off.
func DefaultPolicyConfig() PolicyConfig {
	return PolicyConfig{Policy: policy.Default(), Recording: recording.DefaultConfig()}
}

// ResolvedPolicy is what the proxy enforces: immutable rules shared by every connection and
// the per-VM limiter (nil when there is no per-user or per-instance cap).
type ResolvedPolicy struct {
	Rules   *policy.Rules
	Limiter *policy.Limiter
}

func (p PolicyConfig) resolve(r *Resolved) []error {
	rules, errs := policy.Compile(p.Policy)
	errs = append(errs, p.Recording.Validate()...)
	if rules != nil {
		r.Rules = rules
		r.Limiter = rules.NewLimiter()
		r.Warnings = append(r.Warnings, rules.Warnings()...)
	}
	return errs
}
