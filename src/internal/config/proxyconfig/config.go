// Package proxyconfig holds the ssh-proxy's settings: the YAML file the ssh_proxy BOSH job
// renders (docs/config-files.md, "ssh-proxy"). Load reads it; Validate reports every problem as
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
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/config/sshalgo"
	"github.com/app-ssh/app-ssh/internal/logging"
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
}

// Default is the job spec's defaults.
func Default() Config {
	return Config{
		Address:              "0.0.0.0:2222",
		LogLevel:             "info",
		LogTimeFormat:        logging.TimeUnixEpoch,
		CommunicationTimeout: 10 * time.Second,
		HandshakeTimeout:     120 * time.Second,
		EnableCFAuth:         true,
		UAA:                  UAA{ClientID: "ssh-proxy"},
		Hardening:            DefaultHardening(),
		Loggregator:          DefaultLoggregator(),
	}
}

const maxConfigBytes = 4 << 20

// Load reads path on top of Default(). Unknown keys and malformed values are errors naming the
// key; semantic checks are left to Validate.
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

// Validate returns one error per problem, each naming its key.
func (c *Config) Validate() []error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
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
	checkHostPort("address", c.Address, false)
	checkHostPort("health_check_address", c.HealthCheckAddress, true)
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		add("log_level", "%v", err)
	}
	if _, err := logging.ParseTimeFormat(c.LogTimeFormat); err != nil {
		add("log_time_format", "%v", err)
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
		if _, err := LoadSigners(f); err != nil {
			add(fmt.Sprintf("next_host_key_files[%d]", i), "%v", err)
		}
	}

	algs, _, algErrs := c.resolveAlgorithms()
	errs = append(errs, algErrs...)
	if allowed := algs[sshalgo.HostKey]; allowed != nil && len(hostKeys) > 0 && !anyCanSign(hostKeys, allowed) {
		add("allowed_host_key_algorithms", "none of the host keys (%s) can sign with any of %s", keyTypes(hostKeys), strings.Join(allowed, ", "))
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
		checkCA("uaa.ca_cert_file", c.UAA.CACertFile, add)
		checkURL("cc.internal_url", c.CC.InternalURL)
		checkCA("cc.ca_cert_file", c.CC.CACertFile, add)
		checkPair("cc", c.CC.ClientCertFile, c.CC.ClientKeyFile, true, add)
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
		} else {
			checkCA("bbs.ca_cert_file", c.BBS.CACertFile, add)
		}
		checkPair("bbs", c.BBS.ClientCertFile, c.BBS.ClientKeyFile, false, add)
	}

	if c.BackendsTLS.Enabled {
		if len(c.BackendsTLS.CACertFiles) == 0 {
			add("backends_tls.ca_cert_files", "at least one CA is required when backends_tls.enabled is true")
		}
		for i, f := range c.BackendsTLS.CACertFiles {
			checkCA(fmt.Sprintf("backends_tls.ca_cert_files[%d]", i), f, add)
		}
		checkPair("backends_tls", c.BackendsTLS.ClientCertFile, c.BackendsTLS.ClientKeyFile, false, add)
	} else if c.BackendsTLS.AllowPlaintextFallback {
		add("backends_tls.allow_plaintext_fallback", "only meaningful when backends_tls.enabled is true")
	}
	c.Hardening.validate(add)
	c.Loggregator.validate(add)
	errs = append(errs, ValidateStaticTargets(c.StaticTargets, c.EnableDiegoAuth)...)
	return errs
}

func anyCanSign(keys []ssh.Signer, allowed []string) bool {
	for _, k := range keys {
		if _, algs, _ := sshalgo.RestrictSigner(k, allowed); len(algs) > 0 {
			return true
		}
	}
	return false
}

func keyTypes(keys []ssh.Signer) string {
	t := make([]string, len(keys))
	for i, k := range keys {
		t[i] = k.PublicKey().Type()
	}
	return strings.Join(t, ", ")
}

// UsesBBS reports whether any enabled login scheme finds its instances through the BBS.
func (c *Config) UsesBBS() bool { return c.EnableCFAuth || c.EnableDiegoAuth }

func checkCA(key, file string, add func(key, format string, args ...any)) {
	if file == "" {
		return
	}
	if _, err := LoadCertPool(file); err != nil {
		add(key, "%v", err)
	}
}

func checkPair(section, certFile, keyFile string, optional bool, add func(key, format string, args ...any)) {
	if certFile == "" && keyFile == "" && optional {
		return
	}
	bad := false
	if certFile == "" {
		add(section+".client_cert_file", "must be set")
		bad = true
	} else if _, err := os.Stat(certFile); err != nil {
		add(section+".client_cert_file", "%v", err)
		bad = true
	}
	if keyFile == "" {
		add(section+".client_key_file", "must be set")
		bad = true
	} else if _, err := os.Stat(keyFile); err != nil {
		add(section+".client_key_file", "%v", err)
		bad = true
	}
	if !bad {
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			add(section+".client_cert_file", "does not pair with %s.client_key_file: %v", section, err)
		}
	}
}

// LoadSigner reads a file holding exactly one PEM private key (RSA, ECDSA or ed25519) as an
// SSH signer.
func LoadSigner(file string) (ssh.Signer, error) {
	signers, err := LoadSigners(file)
	if err != nil {
		return nil, err
	}
	if len(signers) != 1 {
		return nil, fmt.Errorf("holds %d private keys; one is expected", len(signers))
	}
	return signers[0], nil
}

// LoadSigners reads every PEM private key in a file, in order. The job renders a list of keys
// (additional_host_keys, next_host_keys) into one file, one PEM block after another.
func LoadSigners(file string) ([]ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
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

// LoadCertPool reads one or more PEM certificates into a pool.
func LoadCertPool(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, errors.New("no PEM certificate in file")
		}
	}
	return pool, nil
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

// Warnings lists what the proxy tolerates but an operator should fix: algorithm names it
// ignores, and a configuration under which every login is refused. One line each, naming the
// key. -check-config prints them (and still succeeds); the proxy logs them at start.
func (c *Config) Warnings() []string {
	_, warnings, _ := c.resolveAlgorithms()
	if !c.EnableCFAuth && !c.EnableDiegoAuth && len(c.StaticTargets) == 0 {
		warnings = append(warnings, "enable_cf_auth: no login scheme is enabled (enable_cf_auth and enable_diego_auth are false and there are no static_targets); every login is refused")
	}
	return warnings
}

// SSHConfig returns the ciphers, MACs and key exchanges to offer (sshalgo's defaults for an
// empty list; unknown names dropped). The config must have passed Validate.
func (c *Config) SSHConfig() ssh.Config {
	use, _, _ := c.resolveAlgorithms()
	return ssh.Config{Ciphers: use[sshalgo.Cipher], MACs: use[sshalgo.MAC], KeyExchanges: use[sshalgo.KeyExchange]}
}

// HostKeyAlgorithms returns the signature algorithms the host keys may be offered with
// (sshalgo's defaults for an empty allowed_host_key_algorithms). The config must have passed
// Validate.
func (c *Config) HostKeyAlgorithms() []string {
	use, _, _ := c.resolveAlgorithms()
	return use[sshalgo.HostKey]
}
