package metrics

import "github.com/prometheus/client_golang/prometheus"

// DenialKinds are the kinds of ssh_proxy_policy_denials_total, pre-registered at 0 (policy.Kinds;
// listed here so metrics does not depend on the policy package).
var DenialKinds = []string{"shell", "exec", "scp", "pty", "sftp", "subsystem", "local-forward",
	"remote-forward", "env", "agent-forwarding", "x11-forwarding", "channel-type",
	"max-sessions-per-connection", "max-channels-per-connection", "max-sessions-per-user",
	"max-sessions-per-instance", "max-session-duration", "malformed"}

// Recording results of ssh_proxy_recordings_total.
const (
	RecordingRecorded = "recorded"
	RecordingCapped   = "capped"
	RecordingFailed   = "failed"
)

type policyMetrics struct {
	denials        *prometheus.CounterVec
	recordings     *prometheus.CounterVec
	recordingBytes prometheus.Counter
}

func (m *Metrics) registerPolicy() {
	m.policy.denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_policy_denials_total",
		Help: "Channel opens and requests refused by the operator's policy (or closed by its session duration), by kind."}, []string{"kind"})
	m.policy.recordings = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ssh_proxy_recordings_total",
		Help: "Session recordings that ended, by result (recorded, capped, failed)."}, []string{"result"})
	m.policy.recordingBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "ssh_proxy_recording_bytes_total",
		Help: "Bytes written to session recordings."})
	m.Registry.MustRegister(m.policy.denials, m.policy.recordings, m.policy.recordingBytes)
	for _, k := range DenialKinds {
		m.policy.denials.WithLabelValues(k)
	}
	for _, r := range []string{RecordingRecorded, RecordingCapped, RecordingFailed} {
		m.policy.recordings.WithLabelValues(r)
	}
}

// PolicyDenied counts one denial of kind.
func (m *Metrics) PolicyDenied(kind string) {
	if m == nil {
		return
	}
	m.policy.denials.WithLabelValues(kind).Inc()
}

// Recording counts one finished recording of size bytes.
func (m *Metrics) Recording(result string, bytes int64) {
	if m == nil {
		return
	}
	m.policy.recordings.WithLabelValues(result).Inc()
	if bytes > 0 {
		m.policy.recordingBytes.Add(float64(bytes))
	}
}
