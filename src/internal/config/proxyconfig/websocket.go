package proxyconfig

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"

	"github.com/app-ssh/app-ssh/internal/proxyproto"
	"github.com/app-ssh/app-ssh/internal/tlsfiles"
)

// WebSocket is the `listen_ws_addr`, `disable_tcp_listener` and `ws:` keys: SSH over
// WebSocket (Cloud Foundry RFC-0029) served by internal/wslisten, its connections handed to the
// same SSH server as the TCP listener's.
type WebSocket struct {
	// ListenWSAddr is the WebSocket (TLS) listen address; empty = no WebSocket listener.
	ListenWSAddr string `yaml:"listen_ws_addr"`
	// DisableTCPListener closes the SSH listener on address ("WS only", RFC-0029 scenario C).
	DisableTCPListener bool `yaml:"disable_tcp_listener"`
	WS                 WS   `yaml:"ws"`
}

// WS is the `ws:` section.
type WS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TrustedRouterCIDRs are the networks (gorouter's) whose requests may name the client in
	// X-Forwarded-For; from anyone else the header is ignored.
	TrustedRouterCIDRs []string `yaml:"trusted_router_cidrs"`
}

// ResolvedWebSocket is the WebSocket listener's settings, files read.
type ResolvedWebSocket struct {
	TLS            *tls.Config
	TrustedRouters []netip.Prefix
}

// resolve checks the WebSocket keys and loads the listener's certificate (r.WSListener stays
// nil when listen_ws_addr is empty).
func (w *WebSocket) resolve(r *Resolved, add func(key, format string, args ...any)) {
	if w.ListenWSAddr == "" {
		if w.DisableTCPListener {
			add("disable_tcp_listener", "true needs listen_ws_addr: without the WebSocket listener the proxy would accept no connections")
		}
		for _, f := range []struct{ key, v string }{{"ws.cert_file", w.WS.CertFile}, {"ws.key_file", w.WS.KeyFile}} {
			if f.v != "" {
				add(f.key, "only meaningful when listen_ws_addr is set")
			}
		}
		if len(w.WS.TrustedRouterCIDRs) > 0 {
			add("ws.trusted_router_cidrs", "only meaningful when listen_ws_addr is set")
		}
		return
	}
	if _, _, err := net.SplitHostPort(w.ListenWSAddr); err != nil {
		add("listen_ws_addr", "%v", err)
	}
	rw := &ResolvedWebSocket{}
	ok := true
	for i, s := range w.WS.TrustedRouterCIDRs {
		p, err := proxyproto.ParsePrefix(s)
		if err != nil {
			add(fmt.Sprintf("ws.trusted_router_cidrs[%d]", i), "%v", err)
			ok = false
			continue
		}
		rw.TrustedRouters = append(rw.TrustedRouters, p)
	}
	set := true
	for _, f := range []struct{ key, file string }{{"ws.cert_file", w.WS.CertFile}, {"ws.key_file", w.WS.KeyFile}} {
		if f.file == "" {
			add(f.key, "must be set when listen_ws_addr is set")
			set = false
		}
	}
	if set {
		tlsCfg, err := tlsfiles.Server(w.WS.CertFile, w.WS.KeyFile)
		if err != nil {
			addPairError(add, "ws.cert_file", "ws.key_file", w.WS.KeyFile, err)
			ok = false
		}
		rw.TLS = tlsCfg
	}
	if ok && set {
		r.WSListener = rw
	}
}
