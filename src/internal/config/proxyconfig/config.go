// Package proxyconfig holds the ssh-proxy's settings: the YAML file the ssh_proxy BOSH job
// renders (docs/config-files.md, "ssh-proxy"). Load reads it; Resolve reports every problem as
// one line that names the key. Every validation message for the proxy is worded here.
package proxyconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/config/sshalgo"
	"github.com/app-ssh/app-ssh/internal/limits"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/proxyproto"
	"github.com/app-ssh/app-ssh/internal/tlsfiles"
)

// UAA is the `uaa:` section.
type UAA struct {
	TokenURL       string `yaml:"token_url"`
	ClientID       string `yaml:"client_id"`
	ClientSecret   string `yaml:"client_secret"`
	CACertFile     string `yaml:"ca_cert_file"`
	SkipCertVerify bool   `yaml:"skip_cert_verify"`
}

// CC is the `cc:` section.
type CC struct {
	InternalURL    string `yaml:"internal_url"`
	CACertFile     string `yaml:"ca_cert_file"`
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
	SkipCertVerify bool   `yaml:"skip_cert_verify"`
}

// BBS is the `bbs:` section.
type BBS struct {
	Address        string `yaml:"address"`
	CACertFile     string `yaml:"ca_cert_file"`
	ClientCertFile string `yaml:"client_cert_file"`
	ClientKeyFile  string `yaml:"client_key_file"`
	ServerName     string `yaml:"server_name"`
}

// BackendsTLS is the `backends_tls:` section: TLS (through the container's Envoy) to the
// sshd inside the app instance.
type BackendsTLS struct {
	Enabled                bool     `yaml:"enabled"`
	CACertFiles            []string `yaml:"ca_cert_files"`
	ClientCertFile         string   `yaml:"client_cert_file"`
	ClientKeyFile          string   `yaml:"client_key_file"`
	AllowPlaintextFallback bool     `yaml:"allow_plaintext_fallback"`
}

// Config is the whole ssh-proxy file.
type Config struct {
	Address            string `yaml:"address"`
	HealthCheckAddress string `yaml:"health_check_address"`
	LogLevel           string `yaml:"log_level"`
	// LogTimeFormat is lager's timestamp format: unix-epoch (default) or rfc3339.
	LogTimeFormat string `yaml:"log_time_format"`
	// DebugAddress serves pprof and /log-level (internal/debugserver); empty = none.
	DebugAddress             string        `yaml:"debug_address"`
	HostKeyFiles             []string      `yaml:"host_key_files"`
	NextHostKeyFiles         []string      `yaml:"next_host_key_files"`
	AllowedCiphers           []string      `yaml:"allowed_ciphers"`
	AllowedMACs              []string      `yaml:"allowed_macs"`
	AllowedKeyExchanges      []string      `yaml:"allowed_key_exchanges"`
	AllowedHostKeyAlgorithms []string      `yaml:"allowed_host_key_algorithms"`
	IdleConnectionTimeout    time.Duration `yaml:"idle_connection_timeout"`
	// MaxConnectionDuration closes a session this long after it was established (0 = never).
	MaxConnectionDuration time.Duration `yaml:"max_connection_duration"`
	CommunicationTimeout  time.Duration `yaml:"communication_timeout"`
	// HandshakeTimeout bounds the SSH handshake including authentication (OpenSSH
	// LoginGraceTime, default 120s).
	HandshakeTimeout         time.Duration `yaml:"handshake_timeout"`
	ConnectToInstanceAddress bool          `yaml:"connect_to_instance_address"`
	EnableCFAuth             bool          `yaml:"enable_cf_auth"`
	EnableDiegoAuth          bool          `yaml:"enable_diego_auth"`
	DiegoCredentials         string        `yaml:"diego_credentials"`
	UAA                      UAA           `yaml:"uaa"`
	CC                       CC            `yaml:"cc"`
	BBS                      BBS           `yaml:"bbs"`
	BackendsTLS              BackendsTLS   `yaml:"backends_tls"`
	// StaticTargets are fixed sshd instances reachable as "<name>/<index>" (static_targets.go).
	StaticTargets []StaticTarget `yaml:"static_targets"`
	// Hardening: pre-auth limits, keepalive, PROXY protocol, drain, metrics, audit (hardening.go).
	Hardening `yaml:",inline"`
	// Loggregator: app log lines and the ssh-connections gauge (loggregator.go).
	Loggregator Loggregator `yaml:"loggregator"`
	// WebSocket: the SSH-over-WebSocket listener (websocket.go).
	WebSocket `yaml:",inline"`
	// Operator policy and session recording (policy.go, docs/policy.md).
	PolicyConfig `yaml:",inline"`
}

// Default is what a config file is read over: the ssh_proxy job's defaults, as the job renders
// them with no properties set (spec/jobs/ssh_proxy_spec.rb compares `ssh-proxy -print-defaults`
// with that rendering and fails when they drift). Only what the job derives from its VM or
// deployment is left empty (off) here: host key and audit log paths, the health and debug
// listeners, the UAA, CC and BBS addresses and the instance id.
func Default() Config {
	return Config{
		Address:               "0.0.0.0:2222",
		LogLevel:              "info",
		LogTimeFormat:         logging.TimeUnixEpoch,
		IdleConnectionTimeout: 300 * time.Second,
		CommunicationTimeout:  10 * time.Second,
		HandshakeTimeout:      120 * time.Second,
		UAA:                   UAA{ClientID: "ssh-proxy"},
		Hardening:             DefaultHardening(),
		Loggregator:           DefaultLoggregator(),
		PolicyConfig:          DefaultPolicyConfig(),
	}
}

const maxConfigBytes = 4 << 20

// Load reads path on top of Default(). Unknown keys and malformed values are errors naming the
// key; semantic checks are left to Resolve.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigBytes)
	}
	return Parse(data)
}

// Parse decodes YAML on top of Default().
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, describeYAMLError(err)
	}
	return &cfg, nil
}

// describeYAMLError rewords yaml.v3's "field foo not found in type proxyconfig.Config" so the
// message names the key the operator wrote.
func describeYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	lines := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if i := strings.Index(e, "field "); i >= 0 && strings.Contains(e, " not found in type ") {
			rest := e[i+len("field "):]
			key := rest[:strings.Index(rest, " not found in type ")]
			lines = append(lines, fmt.Sprintf("%s%s: unknown key", e[:i], key))
			continue
		}
		lines = append(lines, e)
	}
	return errors.New(strings.Join(lines, "\n"))
}

// Resolved is a valid configuration with every file read and every value parsed, once: what
// the proxy is built from (ssh-proxy -check-config runs the same Resolve). The file's plain
// values (addresses, durations, switches) are read from the embedded Config.
type Resolved struct {
	*Config
	// HostKeys are the host_key_files' keys restricted to the allowed host key algorithms
	// (keys that can sign with none are dropped); NextHostKeys are announced only.
	HostKeys, NextHostKeys []ssh.Signer
	// SSH holds the ciphers, MACs and key exchanges to offer.
	SSH ssh.Config
	// Log is log_level and log_time_format, parsed.
	Log logging.Options
	// Warnings are tolerated problems, one line each naming the key (-check-config prints
	// them; the proxy logs them at start).
	Warnings []string
	// UAATLS and CCTLS are set with enable_cf_auth, BBSTLS when a login scheme uses the BBS;
	// BackendTLS, MetricsTLS and LoggregatorTLS are nil when their feature is off.
	UAATLS, CCTLS, BBSTLS, BackendTLS, MetricsTLS, LoggregatorTLS *tls.Config
	// Penalties is per_source_penalties with its exempt list.
	Penalties limits.PenaltyConfig
	// ProxyProtocol is nil unless proxy_protocol.enabled.
	ProxyProtocol *proxyproto.Policy
	// StaticTargets are static_targets with their keys parsed.
	StaticTargets []ResolvedStaticTarget
	// WSListener is nil unless listen_ws_addr is set.
	WSListener *ResolvedWebSocket
	// Policy: the compiled rules and the per-user/instance limiter (policy.go).
	ResolvedPolicy
}

// Resolve checks every setting and reads every file the configuration names. It returns
// every problem found (one error each, naming its key), not only the first, and a Resolved
// only when there are none.
func (c *Config) Resolve() (*Resolved, []error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	r := &Resolved{Config: c}
	checkHostPort := func(key, addr string, optional bool) {
		if addr == "" {
			if !optional {
				add(key, "must not be empty")
			}
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add(key, "%v", err)
		}
	}
	if !c.DisableTCPListener {
		checkHostPort("address", c.Address, false)
	}
	checkHostPort("health_check_address", c.HealthCheckAddress, true)
	if lvl, err := logging.ParseLevel(c.LogLevel); err != nil {
		add("log_level", "%v", err)
	} else {
		r.Log.Level = lvl
	}
	if tf, err := logging.ParseTimeFormat(c.LogTimeFormat); err != nil {
		add("log_time_format", "%v", err)
	} else {
		r.Log.TimeFormat = tf
	}
	checkHostPort("debug_address", c.DebugAddress, true)

	if len(c.HostKeyFiles) == 0 {
		add("host_key_files", "at least one host key is required")
	}
	var hostKeys []ssh.Signer
	for i, f := range c.HostKeyFiles {
		s, err := LoadSigners(f)
		if err != nil {
			add(fmt.Sprintf("host_key_files[%d]", i), "%v", err)
		}
		hostKeys = append(hostKeys, s...)
	}
	for i, f := range c.NextHostKeyFiles {
		s, err := LoadSigners(f)
		if err != nil {
			add(fmt.Sprintf("next_host_key_files[%d]", i), "%v", err)
		}
		r.NextHostKeys = append(r.NextHostKeys, s...)
	}

	algs, warnings, algErrs := c.resolveAlgorithms()
	errs = append(errs, algErrs...)
	r.Warnings = warnings
	r.SSH = ssh.Config{Ciphers: algs[sshalgo.Cipher], MACs: algs[sshalgo.MAC], KeyExchanges: algs[sshalgo.KeyExchange]}
	if allowed := algs[sshalgo.HostKey]; allowed != nil && len(hostKeys) > 0 {
		keys, err := sshalgo.RestrictSigners(hostKeys, allowed)
		if err != nil {
			add("allowed_host_key_algorithms", "%v", err)
		}
		r.HostKeys = keys
	}

	if c.IdleConnectionTimeout < 0 {
		add("idle_connection_timeout", "must not be negative")
	}
	if c.MaxConnectionDuration < 0 {
		add("max_connection_duration", "must not be negative (0 = no limit)")
	}
	if c.CommunicationTimeout <= 0 {
		add("communication_timeout", "must be positive")
	}
	if c.HandshakeTimeout <= 0 {
		add("handshake_timeout", "must be positive")
	}

	if c.EnableDiegoAuth && c.DiegoCredentials == "" {
		add("diego_credentials", "must be set when enable_diego_auth is true")
	}
	if c.EnableCFAuth {
		checkURL := func(key, u string) {
			p, err := url.Parse(u)
			if u == "" {
				add(key, "must be set when enable_cf_auth is true")
			} else if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				add(key, "%q is not an http(s) URL", u)
			}
		}
		checkURL("uaa.token_url", c.UAA.TokenURL)
		if c.UAA.ClientID == "" {
			add("uaa.client_id", "must be set when enable_cf_auth is true")
		}
		r.UAATLS = clientTLS(add, tlsFiles{caKey: "uaa.ca_cert_file", ca: nonEmpty(c.UAA.CACertFile)})
		checkURL("cc.internal_url", c.CC.InternalURL)
		noPair := c.CC.ClientCertFile == "" && c.CC.ClientKeyFile == ""
		if noPair || checkPair("cc", c.CC.ClientCertFile, c.CC.ClientKeyFile, add) {
			r.CCTLS = clientTLS(add, tlsFiles{caKey: "cc.ca_cert_file", ca: nonEmpty(c.CC.CACertFile),
				certKey: "cc.client_cert_file", keyKey: "cc.client_key_file", cert: c.CC.ClientCertFile, key: c.CC.ClientKeyFile})
		}
		if r.UAATLS != nil {
			r.UAATLS.InsecureSkipVerify = c.UAA.SkipCertVerify //nolint:gosec // operator opt-in
		}
		if r.CCTLS != nil {
			r.CCTLS.InsecureSkipVerify = c.CC.SkipCertVerify //nolint:gosec // operator opt-in
		}
	}

	// Only cf: and diego: logins look instances up in the BBS; a proxy serving nothing but
	// static targets, or with every login scheme off, needs none.
	if c.UsesBBS() {
		if c.BBS.Address == "" {
			add("bbs.address", "must not be empty")
		} else if p, err := url.Parse(c.BBS.Address); err != nil || p.Scheme != "https" || p.Host == "" {
			add("bbs.address", "%q is not an https URL", c.BBS.Address)
		}
		if c.BBS.CACertFile == "" {
			add("bbs.ca_cert_file", "must be set (the BBS is only reached over mutual TLS)")
		}
		if checkPair("bbs", c.BBS.ClientCertFile, c.BBS.ClientKeyFile, add) && c.BBS.CACertFile != "" {
			r.BBSTLS = clientTLS(add, tlsFiles{caKey: "bbs.ca_cert_file", ca: []string{c.BBS.CACertFile},
				certKey: "bbs.client_cert_file", keyKey: "bbs.client_key_file", cert: c.BBS.ClientCertFile, key: c.BBS.ClientKeyFile})
		}
	}

	if c.BackendsTLS.Enabled {
		b := c.BackendsTLS
		if len(b.CACertFiles) == 0 {
			add("backends_tls.ca_cert_files", "at least one CA is required when backends_tls.enabled is true")
		}
		if checkPair("backends_tls", b.ClientCertFile, b.ClientKeyFile, add) && len(b.CACertFiles) > 0 {
			r.BackendTLS = clientTLS(add, tlsFiles{caKey: "backends_tls.ca_cert_files", ca: b.CACertFiles,
				certKey: "backends_tls.client_cert_file", keyKey: "backends_tls.client_key_file", cert: b.ClientCertFile, key: b.ClientKeyFile})
		}
	} else if c.BackendsTLS.AllowPlaintextFallback {
		add("backends_tls.allow_plaintext_fallback", "only meaningful when backends_tls.enabled is true")
	}
	c.Hardening.resolve(r, add)
	c.Loggregator.resolve(r, add)
	c.WebSocket.resolve(r, add)
	errs = append(errs, c.PolicyConfig.resolve(r)...)
	st, stErrs := ResolveStaticTargets(c.StaticTargets, c.EnableDiegoAuth)
	errs = append(errs, stErrs...)
	r.StaticTargets = st
	if len(errs) > 0 {
		return nil, errs
	}
	if !c.EnableCFAuth && !c.EnableDiegoAuth && len(c.StaticTargets) == 0 {
		r.Warnings = append(r.Warnings, "enable_cf_auth: no login scheme is enabled (enable_cf_auth and enable_diego_auth are false and there are no static_targets); every login is refused")
	}
	return r, nil
}

func nonEmpty(files ...string) []string {
	var out []string
	for _, f := range files {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// UsesBBS reports whether any enabled login scheme finds its instances through the BBS.
func (c *Config) UsesBBS() bool { return c.EnableCFAuth || c.EnableDiegoAuth }

// tlsFiles names one TLS client's files and the keys they come from.
type tlsFiles struct {
	caKey, certKey, keyKey string
	ca                     []string
	cert, key              string
}

// clientTLS loads f through tlsfiles. Each problem is added under the key of the file at
// fault, and then nil is returned.
func clientTLS(add func(key, format string, args ...any), f tlsFiles) *tls.Config {
	var pool *x509.CertPool
	ok := true
	if len(f.ca) > 0 {
		p, err := tlsfiles.CertPool(f.ca...)
		if err != nil {
			add(f.caKey, "%v", err)
			ok = false
		}
		pool = p
	}
	var pair *tls.Certificate
	if f.cert != "" || f.key != "" {
		kp, err := tlsfiles.KeyPair(f.cert, f.key)
		if err != nil {
			addPairError(add, f.certKey, f.keyKey, f.key, err)
			ok = false
		}
		pair = &kp
	}
	if !ok {
		return nil
	}
	return tlsfiles.Client(pool, pair)
}

// addPairError adds tlsfiles.KeyPair's error: an unreadable key file under keyKey, anything
// else (an unreadable certificate, a pair that does not match) under certKey.
func addPairError(add func(key, format string, args ...any), certKey, keyKey, keyFile string, err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		k := certKey
		var pe *fs.PathError
		if errors.As(e, &pe) && pe.Path == keyFile {
			k = keyKey
		}
		add(k, "%v", e)
	}
}

// checkPair reports whether both files of a client certificate are set and exist, adding a
// problem under section.client_cert_file / section.client_key_file otherwise.
func checkPair(section, certFile, keyFile string, add func(key, format string, args ...any)) bool {
	ok := true
	for _, f := range []struct{ key, file string }{{section + ".client_cert_file", certFile}, {section + ".client_key_file", keyFile}} {
		if f.file == "" {
			add(f.key, "must be set")
			ok = false
		} else if _, err := os.Stat(f.file); err != nil {
			add(f.key, "%v", err)
			ok = false
		}
	}
	return ok
}

// LoadSigners reads every PEM private key in a file, in order. The job renders a list of keys
// (additional_host_keys, next_host_keys) into one file, one PEM block after another.
func LoadSigners(file string) ([]ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseSigners(data)
}

// parseSigners parses every PEM private key in data, in order.
func parseSigners(data []byte) ([]ssh.Signer, error) {
	var signers []ssh.Signer
	rest := data
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		s, err := parseSigner(pem.EncodeToMemory(b))
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", len(signers)+1, err)
		}
		signers = append(signers, s)
	}
	switch {
	case len(signers) == 0:
		return nil, errors.New("not a PEM private key")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("text after the last PEM private key")
	}
	return signers, nil
}

func parseSigner(block []byte) (ssh.Signer, error) {
	s, err := ssh.ParsePrivateKey(block)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errors.New("private key is encrypted with a passphrase")
		}
		return nil, fmt.Errorf("not a usable private key: %v", err)
	}
	return s, nil
}

// algorithmKeys are the four allowed_* keys with the kind each lists.
var algorithmKeys = []struct {
	key  string
	kind sshalgo.Kind
	list func(*Config) []string
}{
	{"allowed_ciphers", sshalgo.Cipher, func(c *Config) []string { return c.AllowedCiphers }},
	{"allowed_macs", sshalgo.MAC, func(c *Config) []string { return c.AllowedMACs }},
	{"allowed_key_exchanges", sshalgo.KeyExchange, func(c *Config) []string { return c.AllowedKeyExchanges }},
	{"allowed_host_key_algorithms", sshalgo.HostKey, func(c *Config) []string { return c.AllowedHostKeyAlgorithms }},
}

// resolveAlgorithms resolves the four lists (sshalgo.Resolve): the lists to configure by kind,
// one warning per key that named something x/crypto does not implement, and one error per key
// left with no usable name.
func (c *Config) resolveAlgorithms() (map[sshalgo.Kind][]string, []string, []error) {
	use := map[sshalgo.Kind][]string{}
	var warnings []string
	var errs []error
	for _, a := range algorithmKeys {
		names, dropped, err := sshalgo.Resolve(a.kind, a.list(c))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", a.key, err))
			continue
		}
		if len(dropped) > 0 {
			warnings = append(warnings, a.key+": "+sshalgo.Ignored(a.kind, dropped))
		}
		use[a.kind] = names
	}
	return use, warnings, errs
}
