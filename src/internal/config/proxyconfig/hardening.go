package proxyconfig

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/proxyproto"
)

// Hardening holds the pre-authentication limits, liveness, PROXY protocol, drain, metrics and
// audit settings (docs/config-files.md, "Hardening and operability"). Its keys sit at the top
// level of the file.
type Hardening struct {
	// PreauthIdleTimeout closes a connection that sends nothing for this long before it has
	// authenticated (time spent waiting for UAA, CC or the BBS does not count). 0 = off.
	PreauthIdleTimeout time.Duration `yaml:"preauth_idle_timeout"`
	// MaxAuthTries is the number of failed authentication attempts allowed per connection.
	MaxAuthTries int `yaml:"max_auth_tries"`
	// MaxConnections caps all open client connections (authenticated or not). 0 = no cap.
	MaxConnections int `yaml:"max_connections"`
	// MaxUnauthenticatedConnections bounds the connections that have not authenticated yet:
	// beyond it the one that made the least progress is closed, never the new arrival.
	MaxUnauthenticatedConnections int                `yaml:"max_unauthenticated_connections"`
	PerSourcePenalties            PerSourcePenalties `yaml:"per_source_penalties"`
	PerSourcePenaltyExemptList    []string           `yaml:"per_source_penalty_exempt_list"`
	// ClientAddressesPreserved says the connections' peer addresses are the clients' own (no
	// load balancer or NAT in front rewrites them). Without it, per-source penalties apply only
	// to addresses a PROXY protocol header announced.
	ClientAddressesPreserved bool          `yaml:"client_addresses_preserved"`
	Keepalive                Keepalive     `yaml:"keepalive"`
	ProxyProtocol            ProxyProtocol `yaml:"proxy_protocol"`
	// DrainTimeout is how long live sessions may continue after SIGTERM.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	Metrics      Metrics       `yaml:"metrics"`
	// AuditLogFile, when set, receives one JSON line per session start and end.
	AuditLogFile string `yaml:"audit_log_file"`
}

// PerSourcePenalties is the `per_source_penalties:` section (OpenSSH PerSourcePenalties, for
// refused credentials only).
type PerSourcePenalties struct {
	Enabled    bool          `yaml:"enabled"`
	AuthFail   time.Duration `yaml:"authfail"`
	Min        time.Duration `yaml:"min"`
	Max        time.Duration `yaml:"max"`
	MaxSources int           `yaml:"max_sources"`
	// Overflow is "permissive" (untracked sources are let in when the table is full) or
	// "deny-all".
	Overflow string `yaml:"overflow"`
}

// Keepalive is the `keepalive:` section (OpenSSH ClientAliveInterval/ClientAliveCountMax).
type Keepalive struct {
	Interval time.Duration `yaml:"interval"`
	CountMax int           `yaml:"count_max"`
}

// ProxyProtocol is the `proxy_protocol:` section.
type ProxyProtocol struct {
	Enabled      bool     `yaml:"enabled"`
	AllowedCIDRs []string `yaml:"allowed_cidrs"`
}

// Metrics is the `metrics:` section: the Prometheus endpoint (off when address is empty).
type Metrics struct {
	Address  string `yaml:"address"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// DefaultMaxUnauthenticated is max_unauthenticated_connections' default.
const DefaultMaxUnauthenticated = 1000

// DefaultHardening is the job spec's defaults (the spec says why each is what it is).
func DefaultHardening() Hardening {
	return Hardening{
		// A person pasting a `cf ssh-code` at a password prompt sends nothing meanwhile.
		PreauthIdleTimeout:            90 * time.Second,
		MaxAuthTries:                  6,
		MaxConnections:                10000,
		MaxUnauthenticatedConnections: DefaultMaxUnauthenticated,
		PerSourcePenalties: PerSourcePenalties{Enabled: true, AuthFail: 5 * time.Second,
			Min: 15 * time.Second, Max: 10 * time.Minute, MaxSources: 65536, Overflow: "permissive"},
		// Loopback sources are the VM itself or a relay on it (behind which every client would
		// share one address): never a client's own address.
		PerSourcePenaltyExemptList: []string{"127.0.0.0/8", "::1/128"},
		Keepalive:                  Keepalive{Interval: 30 * time.Second, CountMax: 3},
		DrainTimeout:               60 * time.Second,
	}
}

func (h *Hardening) validate(add func(key, format string, args ...any)) {
	if h.PreauthIdleTimeout < 0 {
		add("preauth_idle_timeout", "must not be negative")
	}
	if h.MaxAuthTries < 1 {
		add("max_auth_tries", "must be at least 1")
	}
	if h.MaxConnections < 0 {
		add("max_connections", "must not be negative (0 = no cap)")
	}
	if h.MaxUnauthenticatedConnections < 1 {
		add("max_unauthenticated_connections", "must be at least 1")
	}
	p := h.PerSourcePenalties
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"authfail", p.AuthFail}, {"min", p.Min}, {"max", p.Max}} {
		if d.v < 0 {
			add("per_source_penalties."+d.key, "must not be negative")
		}
	}
	if p.Enabled {
		if p.Max <= 0 {
			add("per_source_penalties.max", "must be positive when per_source_penalties.enabled is true")
		} else if p.Min > p.Max {
			add("per_source_penalties.min", "must not exceed per_source_penalties.max")
		}
		if p.MaxSources < 1 {
			add("per_source_penalties.max_sources", "must be at least 1")
		}
	}
	if p.Overflow != "permissive" && p.Overflow != "deny-all" {
		add("per_source_penalties.overflow", "%q is not permissive or deny-all", p.Overflow)
	}
	for i, s := range h.PerSourcePenaltyExemptList {
		if _, err := proxyproto.ParsePrefix(s); err != nil {
			add(fmt.Sprintf("per_source_penalty_exempt_list[%d]", i), "%v", err)
		}
	}
	if h.Keepalive.Interval < 0 {
		add("keepalive.interval", "must not be negative (0 = off)")
	}
	if h.Keepalive.Interval > 0 && h.Keepalive.CountMax < 1 {
		add("keepalive.count_max", "must be at least 1 when keepalive.interval is set")
	}
	for i, s := range h.ProxyProtocol.AllowedCIDRs {
		if _, err := proxyproto.ParsePrefix(s); err != nil {
			add(fmt.Sprintf("proxy_protocol.allowed_cidrs[%d]", i), "%v", err)
		}
	}
	if h.ProxyProtocol.Enabled && len(h.ProxyProtocol.AllowedCIDRs) == 0 {
		add("proxy_protocol.allowed_cidrs", "at least one CIDR is required when proxy_protocol.enabled is true")
	}
	if !h.ProxyProtocol.Enabled && len(h.ProxyProtocol.AllowedCIDRs) > 0 {
		add("proxy_protocol.allowed_cidrs", "only meaningful when proxy_protocol.enabled is true")
	}
	if h.DrainTimeout < 0 {
		add("drain_timeout", "must not be negative")
	}
	m := h.Metrics
	if m.Address != "" {
		if _, _, err := net.SplitHostPort(m.Address); err != nil {
			add("metrics.address", "%v", err)
		}
	}
	if m.CertFile != "" || m.KeyFile != "" {
		if m.Address == "" {
			add("metrics.cert_file", "only meaningful when metrics.address is set")
		} else {
			checkPair("metrics", m.CertFile, m.KeyFile, false, func(key, format string, args ...any) {
				// checkPair names client_*; the metrics keys are cert_file / key_file.
				switch key {
				case "metrics.client_cert_file":
					key = "metrics.cert_file"
				case "metrics.client_key_file":
					key = "metrics.key_file"
				}
				add(key, format, args...)
			})
		}
	}
}

// PenaltyConfig converts per_source_penalties and the exempt list for limits.NewPenalties
// (call after Validate).
func (h *Hardening) PenaltyConfig() limits.PenaltyConfig {
	p := h.PerSourcePenalties
	cfg := limits.PenaltyConfig{AuthFail: p.AuthFail, Min: p.Min, Max: p.Max, MaxSources: p.MaxSources,
		DenyAllOnOverflow: p.Overflow == "deny-all"}
	for _, s := range h.PerSourcePenaltyExemptList {
		if pf, err := proxyproto.ParsePrefix(s); err == nil {
			cfg.Exempt = append(cfg.Exempt, pf)
		}
	}
	return cfg
}

// ExemptPrefixes is per_source_penalty_exempt_list parsed (invalid entries skipped).
func (h *Hardening) ExemptPrefixes() []netip.Prefix { return h.PenaltyConfig().Exempt }

// MetricsTLS is the metrics endpoint's server TLS config, or nil for plain HTTP.
func (h *Hardening) MetricsTLS() (*tls.Config, error) {
	if h.Metrics.CertFile == "" {
		return nil, nil
	}
	kp, err := tls.LoadX509KeyPair(h.Metrics.CertFile, h.Metrics.KeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}
