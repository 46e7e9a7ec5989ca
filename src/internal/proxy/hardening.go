package proxy

import (
	"fmt"
	"log/slog"

	"github.com/app-ssh/app-ssh/internal/audit"
	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/proxyproto"
	"github.com/app-ssh/app-ssh/internal/server"
)

// hardening fills the server's pre-auth limits, liveness, PROXY protocol, drain, metrics and
// audit settings from cfg and starts the metrics endpoint. The returned func closes what it
// opened (call it after Serve returns).
func hardening(cfg *proxyconfig.Config, sc *server.Config, logger *slog.Logger) (func(), error) {
	h := cfg.Hardening
	sc.PreauthIdleTimeout = h.PreauthIdleTimeout
	sc.MaxAuthTries = h.MaxAuthTries
	sc.MaxConnections = h.MaxConnections
	sc.KeepaliveInterval, sc.KeepaliveCountMax = h.Keepalive.Interval, h.Keepalive.CountMax
	sc.DrainTimeout = h.DrainTimeout
	sc.Preauth = limits.NewPreauth(h.MaxUnauthenticatedConnections)
	if h.PerSourcePenalties.Enabled {
		sc.Penalties = limits.NewPenalties(h.PenaltyConfig())
		sc.ClientAddressesPreserved = h.ClientAddressesPreserved
	}
	if h.ProxyProtocol.Enabled {
		p, err := proxyproto.NewPolicy(h.ProxyProtocol.AllowedCIDRs)
		if err != nil {
			return nil, fmt.Errorf("proxy_protocol.allowed_cidrs: %w", err)
		}
		sc.ProxyProtocol = p
	}

	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	sc.Metrics = metrics.New()
	if h.Metrics.Address != "" {
		tlsCfg, err := h.MetricsTLS()
		if err != nil {
			return nil, fmt.Errorf("metrics.cert_file: %w", err)
		}
		ep, err := metrics.Listen(h.Metrics.Address, tlsCfg, sc.Metrics)
		if err != nil {
			return nil, err
		}
		logger.Info("ssh-proxy.metrics-listening", "address", ep.Addr().String(), "tls", tlsCfg != nil)
		closers = append(closers, func() { _ = ep.Close() })
	}
	if h.AuditLogFile != "" {
		al, err := audit.Open(h.AuditLogFile)
		if err != nil {
			closeAll()
			return nil, err
		}
		sc.Audit = al
		closers = append(closers, func() { _ = al.Close() })
	}
	return closeAll, nil
}
