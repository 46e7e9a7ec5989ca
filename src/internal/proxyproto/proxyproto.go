// Package proxyproto decides, per connection, whether a PROXY protocol (v1 or v2) header is
// required or refused, using github.com/pires/go-proxyproto to parse it.
//
// Peers inside the allow-list (the L4 load balancers) must open with a header: a connection
// from them without one is refused, since the proxy cannot tell such a connection's client.
// Peers outside the list must not send one: a header from them is refused; without one they
// are served as direct clients. A v2 LOCAL header (the balancer's own health check) is
// accepted and the socket's peer address is used.
package proxyproto

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	pp "github.com/pires/go-proxyproto"
)

var (
	// ErrHeaderMissing: an allow-listed peer sent no PROXY header.
	ErrHeaderMissing = errors.New("PROXY protocol header required from this peer but missing")
	// ErrHeaderNotAllowed: a peer outside the allow-list sent a PROXY header.
	ErrHeaderNotAllowed = errors.New("PROXY protocol header from a peer not in proxy_protocol.allowed_cidrs")
	// ErrUnsupportedHeader: the header carries something other than a TCP client address.
	ErrUnsupportedHeader = errors.New("PROXY protocol header does not carry a TCP over IPv4/IPv6 client address")
)

// Policy is the per-peer decision. The zero value (or nil) refuses headers from everyone.
type Policy struct {
	allowed []netip.Prefix
}

// NewPolicy parses the allow-list (CIDRs or single addresses).
func NewPolicy(allowed []string) (*Policy, error) {
	p := &Policy{}
	for _, s := range allowed {
		pf, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		p.allowed = append(p.allowed, pf)
	}
	return p, nil
}

// ParsePrefix reads a CIDR, or a single address as a /32 or /128.
func ParsePrefix(s string) (netip.Prefix, error) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		return pf.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Allowed reports whether peer may (and must) send a header.
func (p *Policy) Allowed(peer netip.Addr) bool {
	if p == nil {
		return false
	}
	peer = peer.Unmap()
	for _, pf := range p.allowed {
		if pf.Contains(peer) {
			return true
		}
	}
	return false
}

// Wrap reads (or rules out) the header on c before anything else is read or written, under
// whatever deadline the caller set on c. The returned conn's RemoteAddr is the client address
// the header carried (or c's peer). On error the caller closes c.
func (p *Policy) Wrap(c net.Conn) (net.Conn, error) {
	peer := AddrOf(c.RemoteAddr())
	policy := pp.REJECT
	if p.Allowed(peer) {
		policy = pp.REQUIRE
	}
	pc := pp.NewConn(c, pp.WithPolicy(policy), pp.SetReadHeaderTimeout(0), pp.ValidateHeader(validate))
	// A zero-length read processes the header without consuming anything after it.
	if _, err := pc.Read(nil); err != nil {
		switch {
		case errors.Is(err, pp.ErrSuperfluousProxyHeader):
			return nil, ErrHeaderNotAllowed
		case errors.Is(err, pp.ErrNoProxyProtocol):
			return nil, ErrHeaderMissing
		}
		return nil, fmt.Errorf("PROXY protocol: %w", err)
	}
	return pc, nil
}

func validate(h *pp.Header) error {
	if h.Command.IsLocal() {
		return nil
	}
	if !h.TransportProtocol.IsStream() || !(h.TransportProtocol.IsIPv4() || h.TransportProtocol.IsIPv6()) {
		return ErrUnsupportedHeader
	}
	if _, ok := h.SourceAddr.(*net.TCPAddr); !ok {
		return ErrUnsupportedHeader
	}
	return nil
}

// AddrOf is the IP of a TCP address (invalid for anything else).
func AddrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// ClientAddressKnown reports whether c's RemoteAddr is a client address a PROXY header carried
// (c was returned by Wrap and its header was a PROXY command, not a balancer's own LOCAL check).
func ClientAddressKnown(c net.Conn) bool {
	pc, ok := c.(*pp.Conn)
	if !ok {
		return false
	}
	h := pc.ProxyHeader()
	return h != nil && h.Command.IsProxy()
}
