package proxy

import (
	"log/slog"

	"github.com/app-ssh/app-ssh/internal/audit"
	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/metrics"
	"github.com/app-ssh/app-ssh/internal/server"
)

// hardening fills the server's pre-auth limits, liveness, PROXY protocol, drain, metrics and
// audit settings from cfg and starts the metrics endpoint. The returned func closes what it
// opened (call it after Serve returns).
func hardening(cfg *proxyconfig.Resolved, sc *server.Config, logger *slog.Logger) (func(), error) {
	h := cfg.Hardening
	sc.PreauthIdleTimeout = h.PreauthIdleTimeout
	sc.MaxAuthTries = h.MaxAuthTries
	sc.MaxConnections = h.MaxConnections
	sc.KeepaliveInterval, sc.KeepaliveCountMax = h.Keepalive.Interval, h.Keepalive.CountMax
	sc.DrainTimeout = h.DrainTimeout
	sc.Preauth = limits.NewPreauth(h.MaxUnauthenticatedConnections)
	if h.PerSourcePenalties.Enabled {
		sc.Penalties = limits.NewPenalties(cfg.Penalties)
		sc.ClientAddressesPreserved = h.ClientAddressesPreserved
	}
	sc.ProxyProtocol = cfg.ProxyProtocol

	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	sc.Metrics = metrics.New()
	if h.Metrics.Address != "" {
		ep, err := metrics.Listen(h.Metrics.Address, cfg.MetricsTLS, sc.Metrics)
		if err != nil {
			return nil, err
		}
		logger.Info("ssh-proxy.metrics-listening", "address", ep.Addr().String(), "tls", cfg.MetricsTLS != nil)
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
