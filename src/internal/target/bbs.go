package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/app-ssh/app-ssh/internal/auth"
	"github.com/app-ssh/app-ssh/internal/bbs"
)

// LRPSource is the part of the BBS client the resolver needs (bbs.Client satisfies it).
type LRPSource interface {
	ActualLRPs(ctx context.Context, processGUID string, index int32) ([]bbs.ActualLRP, error)
	DesiredLRPByProcessGUID(ctx context.Context, processGUID string) (*bbs.DesiredLRP, error)
}

// BBSResolver finds an instance's sshd through the BBS.
type BBSResolver struct {
	BBS LRPSource
	// ConnectToInstanceAddress dials the instance address when the BBS does not say which
	// address is preferred (preferred_address UNKNOWN).
	ConnectToInstanceAddress bool
	// BackendTLS, when not nil, turns on TLS to the instance's TLS proxy port (mTLS material
	// and CAs; ServerName is set to the instance guid per target).
	BackendTLS *tls.Config
	// AllowPlaintextFallback lets a failed TLS dial fall back to the plaintext port.
	AllowPlaintextFallback bool
	// Timeout bounds each BBS call (0 = only the caller's context).
	Timeout time.Duration
}

// Resolve looks up the diego-ssh route and the running instance at index. Errors are
// *auth.Refusal.
func (r *BBSResolver) Resolve(ctx context.Context, processGUID string, index int) (Target, error) {
	if index < 0 || index > 1<<31-1 {
		return Target{}, auth.Refuse(auth.ReasonNotRunning, fmt.Errorf("index %d out of range", index))
	}
	cctx, cancel := withTimeout(ctx, r.Timeout)
	desired, err := r.BBS.DesiredLRPByProcessGUID(cctx, processGUID)
	cancel()
	if err != nil {
		if errors.Is(err, bbs.ErrResourceNotFound) {
			return Target{}, auth.Refuse(auth.ReasonAppNotFound, fmt.Errorf("desired LRP %s: %w", processGUID, err))
		}
		return Target{}, auth.Refuse(auth.ReasonBBSUnavailable, err)
	}
	raw, ok := desired.Routes[RouteKey]
	if !ok {
		return Target{}, auth.Refuse(auth.ReasonNoSSHRoute, fmt.Errorf("desired LRP %s has no %s route", processGUID, RouteKey))
	}
	route, err := ParseRoute(raw)
	if err != nil {
		return Target{}, auth.Refuse(auth.ReasonNoSSHRoute, err)
	}

	cctx, cancel = withTimeout(ctx, r.Timeout)
	actuals, err := r.BBS.ActualLRPs(cctx, processGUID, int32(index))
	cancel()
	if err != nil {
		if errors.Is(err, bbs.ErrResourceNotFound) {
			return Target{}, auth.Refuse(auth.ReasonNotRunning, err)
		}
		return Target{}, auth.Refuse(auth.ReasonBBSUnavailable, err)
	}
	actual, ok := pickRunning(actuals, int32(index))
	if !ok {
		return Target{}, auth.Refuse(auth.ReasonNotRunning, fmt.Errorf("no RUNNING actual LRP for %s/%d among %d", processGUID, index, len(actuals)))
	}
	t, err := r.build(processGUID, index, route, actual)
	if err != nil {
		return Target{}, err
	}
	t.LogTags = LogTags(desired, actual)
	return t, nil
}

// LogTags resolves the desired LRP's metric tags for the actual instance, as Diego tags the
// app's own logs: static values as they are, INDEX and INSTANCE_GUID from the instance; a
// tag with neither is left out. source_id defaults to the log_guid and instance_id to the
// index. Nil when there is no source_id (no app log stream to write to).
func LogTags(desired *bbs.DesiredLRP, actual bbs.ActualLRP) map[string]string {
	tags := make(map[string]string, len(desired.MetricTags)+2)
	for k, v := range desired.MetricTags {
		if val, ok := v.Resolve(actual.Index, actual.InstanceGUID); ok {
			tags[k] = val
		}
	}
	if _, ok := tags["source_id"]; !ok && desired.LogGUID != "" {
		tags["source_id"] = desired.LogGUID
	}
	if _, ok := tags["instance_id"]; !ok {
		tags["instance_id"] = strconv.Itoa(int(actual.Index))
	}
	if tags["source_id"] == "" {
		return nil
	}
	return tags
}

// presenceRank orders presences: an ORDINARY instance beats an EVACUATING one, which beats
// a SUSPECT one.
func presenceRank(p bbs.Presence) int {
	switch p {
	case bbs.PresenceOrdinary:
		return 0
	case bbs.PresenceEvacuating:
		return 1
	}
	return 2
}

func pickRunning(actuals []bbs.ActualLRP, index int32) (bbs.ActualLRP, bool) {
	var best bbs.ActualLRP
	found := false
	for _, a := range actuals {
		if a.State != bbs.StateRunning || a.Index != index {
			continue
		}
		if !found || presenceRank(a.Presence) < presenceRank(best.Presence) {
			best, found = a, true
		}
	}
	return best, found
}

func (r *BBSResolver) build(processGUID string, index int, route Route, a bbs.ActualLRP) (Target, error) {
	var pm *bbs.PortMapping
	for i := range a.Ports {
		if a.Ports[i].ContainerPort == route.ContainerPort {
			pm = &a.Ports[i]
			break
		}
	}
	if pm == nil {
		return Target{}, auth.Refuse(auth.ReasonNoSSHRoute, fmt.Errorf("instance %s maps no port for container port %d", a.InstanceGUID, route.ContainerPort))
	}
	useInstance := a.PreferredAddress == bbs.PreferredAddressInstance ||
		(a.PreferredAddress == bbs.PreferredAddressUnknown && r.ConnectToInstanceAddress)
	host, plainPort, tlsPort := a.Address, pm.HostPort, pm.HostTLSProxyPort
	if useInstance {
		host, plainPort, tlsPort = a.InstanceAddress, pm.ContainerPort, pm.ContainerTLSProxyPort
	}
	if host == "" {
		return Target{}, auth.Refuse(auth.ReasonNotRunning, fmt.Errorf("instance %s has no address (instance address: %t)", a.InstanceGUID, useInstance))
	}
	t := Target{ProcessGUID: processGUID, Index: index, InstanceGUID: a.InstanceGUID, Route: route}
	plain := ""
	if plainPort != 0 {
		plain = net.JoinHostPort(host, strconv.Itoa(int(plainPort)))
	}
	if r.BackendTLS == nil {
		if plain == "" {
			return Target{}, auth.Refuse(auth.ReasonNoSSHRoute, fmt.Errorf("instance %s has no port for container port %d", a.InstanceGUID, route.ContainerPort))
		}
		t.Address = plain
		return t, nil
	}
	if tlsPort == 0 {
		if r.AllowPlaintextFallback && plain != "" {
			t.Address = plain
			return t, nil
		}
		return Target{}, auth.Refuse(auth.ReasonBackendTLS, fmt.Errorf("instance %s has no TLS proxy port for container port %d", a.InstanceGUID, route.ContainerPort))
	}
	cfg := r.BackendTLS.Clone()
	cfg.ServerName = a.InstanceGUID
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	t.TLS = cfg
	t.Address = net.JoinHostPort(host, strconv.Itoa(int(tlsPort)))
	if r.AllowPlaintextFallback {
		t.PlaintextAddress = plain
	}
	return t, nil
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
