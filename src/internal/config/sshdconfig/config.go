// Package sshdconfig holds the settings of the in-container sshd: the YAML file the sshd BOSH
// job renders (docs/config-files.md) and the diego-sshd compatible command-line flags map onto
// the same Config. Every validation message is worded here and names the key it is about.
package sshdconfig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/config/sshalgo"
	"github.com/app-ssh/app-ssh/internal/logging"
)

// Config is the sshd section of docs/config-files.md. Key material (HostKeyPEM, AuthorizedKeys)
// may come from flags instead of files; it never appears in logs.
type Config struct {
	Address                     string        `yaml:"address"`
	HostKeyFile                 string        `yaml:"host_key_file"`
	AuthorizedKeys              []string      `yaml:"authorized_keys"`
	AllowUnauthenticatedClients bool          `yaml:"allow_unauthenticated_clients"`
	InheritDaemonEnv            bool          `yaml:"inherit_daemon_env"`
	AllowedCiphers              []string      `yaml:"allowed_ciphers"`
	AllowedMACs                 []string      `yaml:"allowed_macs"`
	AllowedKeyExchanges         []string      `yaml:"allowed_key_exchanges"`
	AllowedHostKeyAlgorithms    []string      `yaml:"allowed_host_key_algorithms"`
	IdleTimeout                 time.Duration `yaml:"idle_timeout"`
	KeepaliveInterval           time.Duration `yaml:"keepalive_interval"`
	KeepaliveCountMax           int           `yaml:"keepalive_count_max"`
	LogLevel                    string        `yaml:"log_level"`
	// GatewayPorts decides where -R listeners bind, with the values and meanings of OpenSSH's
	// sshd_config GatewayPorts: "no" (loopback only, whatever the client asks), "yes" (all
	// interfaces, whatever the client asks), "clientspecified" (the address the client asks
	// for; "" and "*" mean all interfaces).
	GatewayPorts string `yaml:"gateway_ports"`

	// HostKeyPEM is the PEM host key given directly (diego-sshd's -hostKey). When set it wins
	// over HostKeyFile. Not a YAML key.
	HostKeyPEM string `yaml:"-"`
}

// Default returns the defaults of diego-sshd's flags and of the job spec.
func Default() Config {
	return Config{
		Address:           "127.0.0.1:2222",
		KeepaliveInterval: 15 * time.Second,
		KeepaliveCountMax: 3,
		LogLevel:          "info",
		GatewayPorts:      GatewayPortsNo,
	}
}

// The values of GatewayPorts.
const (
	GatewayPortsNo              = "no"
	GatewayPortsYes             = "yes"
	GatewayPortsClientSpecified = "clientspecified"
)

// maxConfigBytes bounds what Load reads; a real file is a few KiB.
const maxConfigBytes = 4 << 20

// Load reads a YAML config file on top of Default(). Unknown keys are problems (a typo must not
// silently fall back to a default). The returned problems are one line each, naming the key.
func Load(path string) (Config, []string) {
	cfg := Default()
	f, err := os.Open(path)
	if err != nil {
		return cfg, []string{fmt.Sprintf("config file: %v", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return cfg, []string{fmt.Sprintf("config file: %v", err)}
	}
	if len(data) > maxConfigBytes {
		return cfg, []string{fmt.Sprintf("config file: larger than %d bytes", maxConfigBytes)}
	}
	return Parse(data)
}

// Parse decodes YAML config text on top of Default().
func Parse(data []byte) (Config, []string) {
	cfg := Default()
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, yamlProblems(err)
	}
	return cfg, nil
}

func yamlProblems(err error) []string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			out = append(out, "config file: "+e)
		}
		return out
	}
	return []string{"config file: " + err.Error()}
}

// Problem is one validation finding: the key (YAML key or flag name) and what is wrong.
type Problem struct {
	Key     string
	Message string
}

func (p Problem) String() string { return p.Key + ": " + p.Message }

// Names maps each setting to the name a message should use for it. YAMLNames is the default;
// internal/sshdcli substitutes flag names for settings given as flags.
type Names struct {
	Address, HostKey, AuthorizedKeys, AllowUnauthenticatedClients                 string
	Ciphers, MACs, KeyExchanges, HostKeyAlgorithms                                string
	IdleTimeout, KeepaliveInterval, KeepaliveCountMax, LogLevel, InheritDaemonEnv string
	GatewayPorts                                                                  string
}

// YAMLNames names settings by their config-file keys.
var YAMLNames = Names{
	Address: "address", HostKey: "host_key_file", AuthorizedKeys: "authorized_keys",
	AllowUnauthenticatedClients: "allow_unauthenticated_clients",
	Ciphers:                     "allowed_ciphers", MACs: "allowed_macs", KeyExchanges: "allowed_key_exchanges",
	HostKeyAlgorithms: "allowed_host_key_algorithms", IdleTimeout: "idle_timeout",
	KeepaliveInterval: "keepalive_interval", KeepaliveCountMax: "keepalive_count_max",
	LogLevel: "log_level", InheritDaemonEnv: "inherit_daemon_env", GatewayPorts: "gateway_ports",
}

// Resolved is a validated Config turned into the objects the server needs.
type Resolved struct {
	Config
	HostKey        ssh.Signer      // nil only when validation failed
	AuthorizedKeys []ssh.PublicKey // parsed AuthorizedKeys
	Ephemeral      bool            // HostKey was generated at start
	LogLevel       lager.LogLevel  // log_level, parsed

	// The algorithm lists to offer: sshalgo's defaults where the setting is empty, otherwise
	// the names given that x/crypto implements.
	Ciphers, MACs, KeyExchanges, HostKeyAlgorithms []string
	// Warnings are tolerated problems (ignored algorithm names, a host key that cannot sign
	// with the listed algorithms), one line each naming the setting. The daemon logs them at
	// start; -check-config prints them and still succeeds.
	Warnings []string
}

// Validate checks every setting, loads the host key (file or PEM; generates an ephemeral
// ed25519 key when neither is set) and parses the authorized keys. It returns every problem
// found, not only the first.
func (c Config) Validate(n Names) (*Resolved, []Problem) {
	var probs []Problem
	add := func(key, format string, args ...any) {
		probs = append(probs, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	r := &Resolved{Config: c}

	if c.Address == "" {
		add(n.Address, "must not be empty")
	} else if _, port, err := net.SplitHostPort(c.Address); err != nil {
		add(n.Address, "not a host:port address: %v", err)
	} else if port == "" {
		add(n.Address, "missing port")
	}
	if lvl, err := logging.ParseLevel(c.LogLevel); err != nil {
		add(n.LogLevel, "%v", err)
	} else {
		r.LogLevel = lvl
	}
	switch c.GatewayPorts {
	case GatewayPortsNo, GatewayPortsYes, GatewayPortsClientSpecified:
	default:
		add(n.GatewayPorts, "must be no, yes or clientspecified, got %q", c.GatewayPorts)
	}
	if c.IdleTimeout < 0 {
		add(n.IdleTimeout, "must not be negative")
	}
	if c.KeepaliveInterval < 0 {
		add(n.KeepaliveInterval, "must not be negative")
	}
	if c.KeepaliveCountMax < 1 || c.KeepaliveCountMax > 1000 {
		add(n.KeepaliveCountMax, "must be between 1 and 1000, got %d", c.KeepaliveCountMax)
	}

	// Names x/crypto does not implement are dropped with a warning, as diego-sshd (through
	// x/crypto) ignored them: the daemon runs codependent with the app, so refusing to start
	// would crash-loop the app. Only a list with no usable name at all is fatal.
	resolve := func(key string, kind sshalgo.Kind, list []string) []string {
		use, dropped, err := sshalgo.Resolve(kind, list)
		if err != nil {
			add(key, "%v", err)
			return nil
		}
		if len(dropped) > 0 {
			r.Warnings = append(r.Warnings, key+": "+sshalgo.Ignored(kind, dropped))
		}
		return use
	}
	r.Ciphers = resolve(n.Ciphers, sshalgo.Cipher, c.AllowedCiphers)
	r.MACs = resolve(n.MACs, sshalgo.MAC, c.AllowedMACs)
	r.KeyExchanges = resolve(n.KeyExchanges, sshalgo.KeyExchange, c.AllowedKeyExchanges)
	r.HostKeyAlgorithms = resolve(n.HostKeyAlgorithms, sshalgo.HostKey, c.AllowedHostKeyAlgorithms)

	for i, line := range c.AuthorizedKeys {
		if strings.TrimSpace(line) == "" {
			add(n.AuthorizedKeys, "entry %d is empty", i)
			continue
		}
		key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			add(n.AuthorizedKeys, "entry %d is not an authorized_keys line: %v", i, err)
			continue
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			add(n.AuthorizedKeys, "entry %d holds more than one key; give one per entry", i)
			continue
		}
		r.AuthorizedKeys = append(r.AuthorizedKeys, key)
	}
	if len(c.AuthorizedKeys) == 0 && !c.AllowUnauthenticatedClients {
		add(n.AuthorizedKeys, "at least one authorized key is required unless %s is set", n.AllowUnauthenticatedClients)
	}

	signer, ephemeral, err := c.hostKey(r.HostKeyAlgorithms)
	if err != nil {
		add(n.HostKey, "%v", err)
	} else if r.HostKeyAlgorithms != nil {
		r.Ephemeral = ephemeral
		restricted, warning, err := restrictHostKey(signer, r.HostKeyAlgorithms)
		if err != nil {
			add(n.HostKeyAlgorithms, "%v", err)
		} else {
			if warning != "" {
				r.Warnings = append(r.Warnings, n.HostKeyAlgorithms+": "+warning)
			}
			r.HostKey = restricted
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return r, nil
}

func (c Config) hostKey(allowed []string) (ssh.Signer, bool, error) {
	var pemBytes []byte
	switch {
	case c.HostKeyPEM != "":
		pemBytes = []byte(c.HostKeyPEM)
	case c.HostKeyFile != "":
		b, err := os.ReadFile(c.HostKeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("cannot read host key: %v", err)
		}
		pemBytes = b
	default:
		priv, err := ephemeralKey(allowed)
		if err != nil {
			return nil, false, fmt.Errorf("cannot generate an ephemeral host key: %v", err)
		}
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			return nil, false, fmt.Errorf("cannot use the ephemeral host key: %v", err)
		}
		return s, true, nil
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		var ppe *ssh.PassphraseMissingError
		if errors.As(err, &ppe) {
			return nil, false, errors.New("host key is passphrase-protected")
		}
		// The parser's message never contains key bytes.
		return nil, false, fmt.Errorf("not a PEM private key: %v", err)
	}
	return s, false, nil
}

// ephemeralKey generates an ed25519 key, or the first other type the allowed host key
// algorithms ask for (RSA 3072 for rsa-sha2-*/ssh-rsa, ECDSA for ecdsa-sha2-*).
func ephemeralKey(allowed []string) (crypto.Signer, error) {
	if len(allowed) == 0 || slices.Contains(allowed, ssh.KeyAlgoED25519) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	for _, a := range allowed {
		switch a {
		case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSA:
			return rsa.GenerateKey(rand.Reader, 3072)
		case ssh.KeyAlgoECDSA256:
			return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case ssh.KeyAlgoECDSA384:
			return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		case ssh.KeyAlgoECDSA521:
			return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		}
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, err
}

// restrictHostKey limits the signature algorithms the host key is offered with to allowed. A
// key that can sign with none of them falls back to sshalgo's defaults with a warning (the
// daemon must not crash-loop its app over a list that names usable algorithms, just none for
// this key); only a key that cannot sign with those either is an error.
func restrictHostKey(s ssh.Signer, allowed []string) (ssh.Signer, string, error) {
	restricted, algs, err := sshalgo.RestrictSigner(s, allowed)
	if err != nil || len(algs) > 0 {
		return restricted, "", err
	}
	restricted, algs, err = sshalgo.RestrictSigner(s, sshalgo.Default(sshalgo.HostKey))
	if err != nil {
		return nil, "", err
	}
	if len(algs) == 0 {
		return nil, "", fmt.Errorf("the %s host key cannot sign with any of the listed algorithms or the defaults (%s)",
			s.PublicKey().Type(), strings.Join(sshalgo.Default(sshalgo.HostKey), ", "))
	}
	return restricted, fmt.Sprintf("the %s host key cannot sign with any listed algorithm; offering it with %s instead",
		s.PublicKey().Type(), strings.Join(algs, ", ")), nil
}

// SSHConfig fills the algorithm lists of an ssh.Config with the resolved lists.
func (r *Resolved) SSHConfig(dst *ssh.Config) {
	dst.Ciphers = slices.Clone(r.Ciphers)
	dst.MACs = slices.Clone(r.MACs)
	dst.KeyExchanges = slices.Clone(r.KeyExchanges)
}

// SplitList splits a diego-sshd comma list ("a,b,c"); empty input is an empty list.
func SplitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
