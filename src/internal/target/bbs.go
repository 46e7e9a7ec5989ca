package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
)

// What Resolve reports, wrapped with detail for the log.
var (
	// ErrProcessNotFound: the BBS has no desired LRP with the process guid.
	ErrProcessNotFound = errors.New("no desired LRP with this process guid")
	// ErrBBSUnavailable: the BBS could not answer.
	ErrBBSUnavailable = errors.New("BBS unavailable")
	// ErrNoSSHRoute: the desired LRP has no usable diego-ssh route, or the instance maps no
	// port for it.
	ErrNoSSHRoute = errors.New("no usable diego-ssh route")
	// ErrNoTLSPort: backends TLS is on and the instance has no TLS proxy port (no fallback).
	ErrNoTLSPort = errors.New("instance has no TLS proxy port")
)

// InstanceError says the index has no running instance: it is beyond the desired instances
// (Instances known, State ""), has no actual LRP (State ""), or is in State.
type InstanceError struct {
	Index int
	// Instances is the desired instance count (-1 when unknown).
	Instances int
	// State is the best actual LRP's state at the index ("" when there is none).
	State string
	// AppName is the desired LRP's app_name tag ("" when it has none).
	AppName string
}

func (e *InstanceError) Error() string {
	if e.State == "" {
		return fmt.Sprintf("no actual LRP at index %d (%d desired)", e.Index, e.Instances)
	}
	return fmt.Sprintf("actual LRP at index %d is %s", e.Index, e.State)
}

// Missing reports whether the index is beyond the desired instances (and nothing runs there).
func (e *InstanceError) Missing() bool {
	return e.State == "" && e.Instances >= 0 && e.Index >= e.Instances
}

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

// Resolve looks up the diego-ssh route and the running instance at index. Errors wrap one of
// the Err* values above or are *InstanceError.
func (r *BBSResolver) Resolve(ctx context.Context, processGUID string, index int) (Target, error) {
	if index < 0 || index > 1<<31-1 {
		return Target{}, &InstanceError{Index: index, Instances: -1}
	}
	cctx, cancel := withTimeout(ctx, r.Timeout)
	desired, err := r.BBS.DesiredLRPByProcessGUID(cctx, processGUID)
	cancel()
	if err != nil {
		if errors.Is(err, bbs.ErrResourceNotFound) {
			return Target{}, fmt.Errorf("%w: %s: %w", ErrProcessNotFound, processGUID, err)
		}
		return Target{}, fmt.Errorf("%w: %w", ErrBBSUnavailable, err)
	}
	route, err := desired.SSHRoute()
	if err != nil {
		return Target{}, fmt.Errorf("%w: desired LRP %s: %w", ErrNoSSHRoute, processGUID, err)
	}

	cctx, cancel = withTimeout(ctx, r.Timeout)
	actuals, err := r.BBS.ActualLRPs(cctx, processGUID, int32(index))
	cancel()
	if err != nil {
		if !errors.Is(err, bbs.ErrResourceNotFound) {
			return Target{}, fmt.Errorf("%w: %w", ErrBBSUnavailable, err)
		}
		actuals = nil
	}
	actual, ok := pickRunning(actuals, int32(index))
	if !ok {
		return Target{}, &InstanceError{Index: index, Instances: int(desired.Instances), State: bestState(actuals, int32(index)),
			AppName: desired.MetricTags["app_name"].Static}
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

// bestState is the state of the actual LRP at index that is closest to running ("" = none).
func bestState(actuals []bbs.ActualLRP, index int32) string {
	state := ""
	for _, a := range actuals {
		if a.Index != index {
			continue
		}
		if state == "" || a.State != bbs.StateCrashed {
			state = a.State
		}
	}
	return state
}

func (r *BBSResolver) build(processGUID string, index int, route bbs.SSHRoute, a bbs.ActualLRP) (Target, error) {
	var pm *bbs.PortMapping
	for i := range a.Ports {
		if a.Ports[i].ContainerPort == route.ContainerPort {
			pm = &a.Ports[i]
			break
		}
	}
	if pm == nil {
		return Target{}, fmt.Errorf("%w: instance %s maps no port for container port %d", ErrNoSSHRoute, a.InstanceGUID, route.ContainerPort)
	}
	useInstance := a.PreferredAddress == bbs.PreferredAddressInstance ||
		(a.PreferredAddress == bbs.PreferredAddressUnknown && r.ConnectToInstanceAddress)
	host, plainPort, tlsPort := a.Address, pm.HostPort, pm.HostTLSProxyPort
	if useInstance {
		host, plainPort, tlsPort = a.InstanceAddress, pm.ContainerPort, pm.ContainerTLSProxyPort
	}
	if host == "" {
		return Target{}, fmt.Errorf("%w: instance %s has no address (instance address: %t)", ErrNoSSHRoute, a.InstanceGUID, useInstance)
	}
	hostKey, err := fingerprint.Parse(route.Fingerprint())
	if err != nil {
		return Target{}, fmt.Errorf("%w: its host key fingerprint: %w", ErrNoSSHRoute, err)
	}
	var signer ssh.Signer
	if route.PrivateKey != "" {
		if signer, err = ssh.ParsePrivateKey([]byte(route.PrivateKey)); err != nil {
			return Target{}, fmt.Errorf("%w: its private key cannot be parsed", ErrNoSSHRoute)
		}
	}
	t := Target{ProcessGUID: processGUID, Index: index, InstanceGUID: a.InstanceGUID,
		HostKey: hostKey, User: route.User, Password: route.Password, Signer: signer}
	plain := ""
	if plainPort != 0 {
		plain = net.JoinHostPort(host, strconv.Itoa(int(plainPort)))
	}
	if r.BackendTLS == nil {
		if plain == "" {
			return Target{}, fmt.Errorf("%w: instance %s has no port for container port %d", ErrNoSSHRoute, a.InstanceGUID, route.ContainerPort)
		}
		t.Address = plain
		return t, nil
	}
	if tlsPort == 0 {
		if r.AllowPlaintextFallback && plain != "" {
			t.Address = plain
			return t, nil
		}
		return Target{}, fmt.Errorf("%w: instance %s, container port %d", ErrNoTLSPort, a.InstanceGUID, route.ContainerPort)
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
