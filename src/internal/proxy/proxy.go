// Package proxy assembles the ssh-proxy from its validated configuration: the UAA, Cloud
// Controller and BBS clients, the authenticators and target resolvers, host keys, pre-auth
// limits, metrics and audit, and the SSH server that ties them together.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/app-ssh/app-ssh/internal/applog"
	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/cc"
	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/debugserver"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/recording"
	"github.com/app-ssh/app-ssh/internal/server"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/uaa"
	"github.com/app-ssh/app-ssh/internal/version"
	"github.com/app-ssh/app-ssh/internal/wslisten"
)

// ccAnswers translates the Cloud Controller client's refusals into login's.
var ccAnswers = []struct{ cc, login error }{
	{cc.ErrForbidden, login.ErrNotPermitted},
	{cc.ErrNotFound, login.ErrNoSuchApp},
	{cc.ErrSSHDisabled, login.ErrSSHDisabled},
	{cc.ErrUnauthenticated, login.ErrTokenRejected},
	{cc.ErrRefused, login.ErrCCMisconfigured},
}

// ccAccess adapts cc.Client to login.AccessChecker.
type ccAccess struct{ c *cc.Client }

func (a ccAccess) SSHAccess(ctx context.Context, token, appGUID string, index int) (string, error) {
	acc, err := a.c.SSHAccess(ctx, token, appGUID, index)
	if err != nil {
		for _, m := range ccAnswers {
			if errors.Is(err, m.cc) {
				return "", fmt.Errorf("%w: %w", m.login, err)
			}
		}
		return "", err
	}
	return acc.ProcessGUID, nil
}

// Run serves SSH as configured by cfg (proxyconfig.Resolve: nothing is parsed again here) until
// ctx is done, then drains and returns. It writes its lager-shaped JSON log to logOut.
// Everything it opens (clients, the debug and metrics endpoints, the audit log, listeners) is
// closed before it returns.
func Run(ctx context.Context, cfg *proxyconfig.Resolved, logOut io.Writer) error {
	lg, err := logging.NewLogger(logOut, "ssh-proxy", cfg.Log)
	if err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	logger := lg.Logger
	if cfg.DebugAddress != "" {
		dbg, err := debugserver.Start(cfg.DebugAddress, lg, logger)
		if err != nil {
			logger.Log(ctx, logging.LevelFatal, "ssh-proxy.debug-server-failed", "debug_address", cfg.DebugAddress, "error", err.Error())
			return fmt.Errorf("debug_address: %w", err)
		}
		defer dbg.Close()
		logger.Info("ssh-proxy.debug-server-listening", "address", dbg.Addr().String())
		if !debugserver.Loopback(cfg.DebugAddress) {
			// Accepted (diego-release allowed it and older defaults were 0.0.0.0:17016), but said.
			logger.Warn("ssh-proxy.debug-server-not-loopback", "debug_address", cfg.DebugAddress,
				"risk", "pprof and /log-level are reachable from the network without authentication")
		}
	}

	for _, w := range cfg.Warnings {
		logger.Warn("ssh-proxy.config-warning", "warning", w)
	}

	logins := &login.Login{DialTimeout: cfg.CommunicationTimeout, Logger: logger}
	if cfg.EnableCFAuth {
		uc, err := uaa.NewClient(uaa.Config{TokenURL: cfg.UAA.TokenURL, ClientID: cfg.UAA.ClientID,
			ClientSecret: cfg.UAA.ClientSecret, TLS: cfg.UAATLS, Timeout: cfg.CommunicationTimeout})
		if err != nil {
			return err
		}
		defer uc.Close()
		ccc, err := cc.NewClient(cc.Config{InternalURL: cfg.CC.InternalURL, TLS: cfg.CCTLS, Timeout: cfg.CommunicationTimeout})
		if err != nil {
			return err
		}
		defer ccc.Close()
		logins.CF = &login.CF{UAA: uc, CC: ccAccess{ccc}, Timeout: cfg.CommunicationTimeout}
	}
	if cfg.EnableDiegoAuth {
		logins.Diego = &login.Diego{Credentials: []byte(cfg.DiegoCredentials)}
	}
	if cfg.UsesBBS() {
		bc, err := bbs.NewClient(bbs.Config{Address: cfg.BBS.Address, TLS: cfg.BBSTLS,
			ServerName: cfg.BBS.ServerName, Timeout: cfg.CommunicationTimeout})
		if err != nil {
			return err
		}
		defer bc.Close()
		logins.Resolver = &target.BBSResolver{
			BBS: bc, ConnectToInstanceAddress: cfg.ConnectToInstanceAddress,
			BackendTLS: cfg.BackendTLS, AllowPlaintextFallback: cfg.BackendsTLS.AllowPlaintextFallback,
			Timeout: cfg.CommunicationTimeout,
		}
	}
	if len(cfg.StaticTargets) > 0 {
		logins.Static, err = staticTargets(cfg)
		if err != nil {
			return err
		}
	}

	scfg := server.Config{
		Address: cfg.Address, DisableTCP: cfg.DisableTCPListener, HealthAddress: cfg.HealthCheckAddress, HostKeys: cfg.HostKeys, NextHostKeys: cfg.NextHostKeys,
		Algorithms: cfg.SSH, HandshakeTimeout: cfg.HandshakeTimeout,
		IdleTimeout: cfg.IdleConnectionTimeout, MaxConnectionDuration: cfg.MaxConnectionDuration, Logger: logger,
	}
	scfg.Policy, scfg.Limiter = cfg.Rules, cfg.Limiter
	if cfg.Recording.Enabled {
		scfg.Recording, err = recording.NewManager(cfg.Recording)
		if err != nil {
			return err
		}
	}
	closeHardening, err := hardening(cfg, &scfg, logger)
	if err != nil {
		return err
	}
	defer closeHardening()
	if cfg.Loggregator.Enabled {
		em, err := appLog(cfg.Loggregator, cfg.LoggregatorTLS, &scfg, logger)
		if err != nil {
			return err
		}
		defer em.Close(5 * time.Second)
	}
	if ws := cfg.WSListener; ws != nil {
		wl, err := wslisten.Listen(wslisten.Config{Addr: cfg.ListenWSAddr, TLS: ws.TLS, TrustedRouters: ws.TrustedRouters,
			Logger: logger.With("listener", wslisten.Transport)})
		if err != nil {
			return fmt.Errorf("listen_ws_addr: %w", err)
		}
		// server.New owns it from here (closes it on failure, Serve on drain).
		scfg.Listeners = append(scfg.Listeners, wl)
		logger.Info("ssh-proxy.websocket-listening", "address", wl.Addr().String(), "trusted_router_cidrs", len(ws.TrustedRouters))
	}
	srv, err := server.New(scfg, logins)
	if err != nil {
		return err
	}
	address := "disabled"
	if a := srv.Addr(); a != nil {
		address = a.String()
	}
	logger.Info("ssh-proxy.starting", "version", version.Version, "address", address, "listen_ws_addr", cfg.ListenWSAddr,
		"cf_auth", cfg.EnableCFAuth, "diego_auth", cfg.EnableDiegoAuth, "backends_tls", cfg.BackendsTLS.Enabled,
		"static_targets", len(cfg.StaticTargets), "loggregator", cfg.Loggregator.Enabled)
	err = srv.Serve(ctx)
	logger.Info("ssh-proxy.exited")
	return err
}

// appLog starts the emitter of app log lines and the ssh-connections gauge and hooks it into
// the server's sessions.
func appLog(l proxyconfig.Loggregator, tlsCfg *tls.Config, sc *server.Config, logger *slog.Logger) (*applog.Emitter, error) {
	em, err := applog.New(applog.Config{Address: l.Address, TLS: tlsCfg, SourceID: l.SourceID,
		InstanceID: l.InstanceID, Metrics: sc.Metrics, Logger: logger})
	if err != nil {
		return nil, err
	}
	sc.Sessions = em
	logger.Info("ssh-proxy.loggregator-enabled", "address", l.Address, "source_id", l.SourceID)
	return em, nil
}

// staticTargets builds the static-target login scheme. The diego credentials are accepted as a
// password only with enable_diego_auth.
func staticTargets(cfg *proxyconfig.Resolved) (*login.Static, error) {
	var creds []byte
	if cfg.EnableDiegoAuth {
		creds = []byte(cfg.DiegoCredentials)
	}
	targets := make([]login.StaticTarget, 0, len(cfg.StaticTargets))
	for _, t := range cfg.StaticTargets {
		targets = append(targets, login.StaticTarget{Name: t.Name, Addresses: t.Instances,
			HostKey: t.HostKey, User: t.User, Signer: t.LoginKey, AuthorizedKeys: t.Keys})
	}
	s, err := login.NewStatic(targets, creds)
	if err != nil {
		return nil, fmt.Errorf("static_targets: %w", err)
	}
	return s, nil
}
