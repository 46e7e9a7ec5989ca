package limits

import (
	"net/netip"
	"sync"
	"time"
)

// PenaltyConfig is OpenSSH's PerSourcePenalties model, for one event only: a connection whose
// client presented credentials (or a user name) that were refused. A source's penalty
// accumulates (each such connection adds AuthFail, capped at Max) and the source is refused once
// the accumulated penalty reaches Min, until it has run out. Connections that never attempt
// authentication (load-balancer health checks, port scans) and connections that run out of
// login grace time (a person still typing) are deliberately not events: behind a load balancer
// or NAT they come from an address many users share.
type PenaltyConfig struct {
	AuthFail time.Duration
	// Min is the accumulated penalty at which refusing starts; Max caps it.
	Min, Max time.Duration
	// MaxSources bounds the table; when it is full of live penalties, new sources are not
	// tracked (DenyAllOnOverflow false) or every untracked source is refused (true).
	MaxSources        int
	DenyAllOnOverflow bool
	// Exempt sources are never penalised.
	Exempt []netip.Prefix
}

type penalty struct {
	expiry time.Time
	active bool
}

// Penalties is a bounded table of penalised source addresses. It is safe for concurrent use.
type Penalties struct {
	cfg PenaltyConfig
	now func() time.Time

	mu        sync.Mutex
	table     map[netip.Addr]*penalty
	lastSweep time.Time
	overflow  bool
}

// NewPenalties returns an empty table.
func NewPenalties(cfg PenaltyConfig) *Penalties {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 65536
	}
	return &Penalties{cfg: cfg, now: time.Now, table: map[netip.Addr]*penalty{}}
}

// Exempt reports whether addr is on the exempt list.
func (p *Penalties) Exempt(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pf := range p.cfg.Exempt {
		if pf.Contains(addr) {
			return true
		}
	}
	return false
}

// Refused reports whether a new connection from addr must be refused now.
func (p *Penalties) Refused(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || p.Exempt(addr) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pe, ok := p.table[addr]
	if !ok {
		if !p.overflow || !p.cfg.DenyAllOnOverflow {
			return false
		}
		p.sweep(now)
		p.overflow = len(p.table) >= p.cfg.MaxSources
		return p.overflow
	}
	if !now.Before(pe.expiry) {
		delete(p.table, addr)
		return false
	}
	return pe.active
}

// Penalise records one refused-credentials connection against addr (nothing for exempt or
// invalid addresses, or when AuthFail is zero).
func (p *Penalties) Penalise(addr netip.Addr) {
	addr = addr.Unmap()
	d := p.cfg.AuthFail
	if d <= 0 || !addr.IsValid() || p.Exempt(addr) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	pe, ok := p.table[addr]
	if ok && !now.Before(pe.expiry) {
		delete(p.table, addr)
		ok = false
	}
	if !ok {
		if len(p.table) >= p.cfg.MaxSources {
			p.sweep(now)
		}
		if len(p.table) >= p.cfg.MaxSources {
			p.overflow = true
			return
		}
		p.overflow = false
		pe = &penalty{expiry: now}
		p.table[addr] = pe
	}
	pe.expiry = pe.expiry.Add(d)
	if p.cfg.Max > 0 && pe.expiry.Sub(now) > p.cfg.Max {
		pe.expiry = now.Add(p.cfg.Max)
	}
	if pe.expiry.Sub(now) >= p.cfg.Min {
		pe.active = true
	}
}

// sweep drops expired entries; at most once a second so a full table under attack does not
// cost a scan per connection.
func (p *Penalties) sweep(now time.Time) {
	if now.Sub(p.lastSweep) < time.Second {
		return
	}
	p.lastSweep = now
	for a, pe := range p.table {
		if !now.Before(pe.expiry) {
			delete(p.table, a)
		}
	}
}

// Len is the number of tracked sources (expired ones may still be counted until swept).
func (p *Penalties) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.table)
}
