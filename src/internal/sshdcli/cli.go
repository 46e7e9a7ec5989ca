// Package sshdcli is the sshd command line: diego-sshd's flags, the -config file they are laid
// over, -check-config and -version, and the re-exec that takes -hostKey/-authorizedKey off the
// process's command line before the daemon starts.
package sshdcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
	"github.com/app-ssh/app-ssh/internal/debugserver"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/sshd"
	"github.com/app-ssh/app-ssh/internal/version"
)

// secretsFDEnv names the inherited pipe that carries -hostKey/-authorizedKey across the
// re-exec that removes them from the command line.
const secretsFDEnv = "APP_SSH_SSHD_SECRETS_FD"

// gcPercent is the GOGC the daemon runs with unless GOGC is set.
const gcPercent = 400

// maxSecrets keeps the secrets within one pipe buffer (64 KiB) so writing never blocks.
const maxSecrets = 60 << 10

type flags struct {
	fs                                        *flag.FlagSet
	address, hostKey, authorizedKey           string
	allowUnauth, inheritEnv                   bool
	ciphers, macs, kex, hostKeyAlgs, logLevel string
	gatewayPorts                              string
	configFile, checkConfig                   string
	debugAddr, timeFormat                     string
	redactSecrets, showVersion, printDefaults bool
	redactPatterns                            patterns
}

// patterns collects a repeatable flag (-redactPatterns, as lagerflags defines it).
type patterns []string

func (p *patterns) String() string     { return strings.Join(*p, ",") }
func (p *patterns) Set(v string) error { *p = append(*p, v); return nil }

func newFlags() *flags {
	f := &flags{fs: flag.NewFlagSet("sshd", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.address, "address", "127.0.0.1:2222", "listen address for ssh daemon")
	fs.StringVar(&f.hostKey, "hostKey", "", "PEM encoded host key (empty: generate an ephemeral key)")
	fs.StringVar(&f.authorizedKey, "authorizedKey", "", "public key in the OpenSSH authorized_keys format")
	fs.BoolVar(&f.allowUnauth, "allowUnauthenticatedClients", false, "allow access to unauthenticated clients")
	fs.BoolVar(&f.inheritEnv, "inheritDaemonEnv", false, "inherit the daemon's environment")
	fs.StringVar(&f.ciphers, "allowedCiphers", "", "limit cipher algorithms to those provided (comma separated)")
	fs.StringVar(&f.macs, "allowedMACs", "", "limit MAC algorithms to those provided (comma separated)")
	fs.StringVar(&f.kex, "allowedKeyExchanges", "", "limit key exchange algorithms to those provided (comma separated)")
	fs.StringVar(&f.hostKeyAlgs, "allowedHostKeyAlgorithms", "", "limit host key algorithms to those provided (comma separated)")
	// diego-sshd's lager and debugserver flags, with their meaning: Cloud Controller starts the
	// daemon with -logLevel=fatal, which must keep everything but fatal lines out of the app's logs.
	fs.StringVar(&f.logLevel, "logLevel", "info", "log level: debug, info, error or fatal (fatal: only fatal lines)")
	fs.BoolVar(&f.redactSecrets, "redactSecrets", false, "use a redacting log sink to scrub sensitive values from data being logged")
	fs.Var(&f.redactPatterns, "redactPatterns", "regex pattern of values to redact (repeatable; implies nothing without -redactSecrets)")
	fs.StringVar(&f.timeFormat, "timeFormat", "", `format for timestamp in logs: "unix-epoch" (default) or "rfc3339"`)
	fs.StringVar(&f.debugAddr, "debugAddr", "", "host:port for serving pprof and /log-level (empty: none)")
	fs.StringVar(&f.gatewayPorts, "gatewayPorts", sshdconfig.GatewayPortsNo, "where -R listeners bind, as OpenSSH's GatewayPorts: no (loopback), yes (all interfaces) or clientspecified")
	fs.StringVar(&f.configFile, "config", "", "YAML config file (flags given explicitly override it)")
	fs.StringVar(&f.checkConfig, "check-config", "", "validate a YAML config file and exit (0 valid, 2 invalid)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&f.printDefaults, "print-defaults", false, "print the defaults a -config file is read over (YAML) and exit")
	return f
}

// Main runs the daemon with the command line args (args[0] is the program name) and returns the
// process exit code: 0 after a clean shutdown on SIGINT/SIGTERM or for -version/-check-config
// success, 1 when the daemon cannot start or fails, 2 for bad flags or configuration. The JSON
// log goes to stdout; usage and configuration problems go to stderr, one line each. When
// -hostKey or -authorizedKey is given it re-executes the binary without them and only returns
// if that fails.
func Main(args []string, stdout, stderr io.Writer) int {
	f := newFlags()
	if err := f.fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.fs.SetOutput(stdout)
			f.fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "sshd: %s\n", oneLine(err.Error()))
		return 2
	}
	if f.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sshd: unexpected argument %q\n", f.fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	if fdStr, ok := os.LookupEnv(secretsFDEnv); ok {
		os.Unsetenv(secretsFDEnv)
		if err := f.readSecrets(fdStr, set); err != nil {
			fmt.Fprintf(stderr, "sshd: %v\n", err)
			return 2
		}
	} else if set["hostKey"] || set["authorizedKey"] {
		// Hide key material: pass it through a pipe and exec ourselves without it.
		err := reexecWithoutSecrets(args[0], f, set)
		fmt.Fprintf(stderr, "sshd: re-exec to hide key material failed: %v\n", err)
		return 1
	}

	if f.printDefaults {
		out, err := yaml.Marshal(sshdconfig.Default())
		if err != nil {
			fmt.Fprintf(stderr, "sshd: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	}
	if f.showVersion {
		fmt.Fprintln(stdout, version.Version)
		return 0
	}
	if f.checkConfig != "" {
		cfg, probs := sshdconfig.Load(f.checkConfig)
		var resolved *sshdconfig.Resolved
		if len(probs) == 0 {
			var vp []sshdconfig.Problem
			resolved, vp = cfg.Validate(sshdconfig.YAMLNames)
			for _, p := range vp {
				probs = append(probs, p.String())
			}
		}
		for _, p := range probs {
			fmt.Fprintln(stderr, oneLine(p))
		}
		if len(probs) > 0 {
			return 2
		}
		for _, w := range resolved.Warnings {
			fmt.Fprintln(stderr, "warning: "+oneLine(w))
		}
		fmt.Fprintln(stdout, "config OK")
		return 0
	}

	timeFormat, err := logging.ParseTimeFormat(f.timeFormat)
	if err != nil {
		fmt.Fprintf(stderr, "-timeFormat: %v\n", err)
		return 2
	}
	for _, p := range f.redactPatterns {
		if _, err := regexp.Compile(p); err != nil {
			fmt.Fprintf(stderr, "-redactPatterns: %s\n", oneLine(err.Error()))
			return 2
		}
	}

	cfg := sshdconfig.Default()
	names := sshdconfig.YAMLNames
	if f.configFile != "" {
		var probs []string
		cfg, probs = sshdconfig.Load(f.configFile)
		if len(probs) > 0 {
			for _, p := range probs {
				fmt.Fprintln(stderr, oneLine(p))
			}
			return 2
		}
	}
	f.apply(&cfg, &names, set, f.configFile == "")
	resolved, probs := cfg.Validate(names)
	if len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, oneLine(p.String()))
		}
		return 2
	}

	if os.Getenv("GOGC") == "" {
		// The SSH library allocates every packet afresh; with the default GOGC a bulk transfer
		// spends a third of its CPU collecting them. The live heap is a few MiB, so 4x headroom
		// costs little memory and makes throughput match OpenSSH's sshd (scripts/bench sshd).
		debug.SetGCPercent(gcPercent)
	}
	lg, err := logging.NewLogger(stdout, "sshd", logging.Options{Level: resolved.LogLevel, TimeFormat: timeFormat,
		RedactSecrets: f.redactSecrets, RedactPatterns: f.redactPatterns})
	if err != nil {
		fmt.Fprintf(stderr, "sshd: %v\n", err)
		return 2
	}
	logger := lg.Logger
	fatal := func(msg string, args ...any) { logger.Log(context.Background(), logging.LevelFatal, msg, args...) }
	for _, w := range resolved.Warnings {
		logger.Warn("config-warning", "warning", w)
	}
	if f.debugAddr != "" {
		dbg, err := debugserver.Start(f.debugAddr, lg, logger)
		if err != nil {
			fatal("debug-server-failed", "debug_addr", f.debugAddr, "error", err.Error())
			return 1
		}
		defer dbg.Close()
	}
	var daemonEnv []string
	if resolved.InheritDaemonEnv {
		daemonEnv = os.Environ()
	}
	srv, err := sshd.New(sshd.Options{Config: resolved, Logger: logger, DaemonEnv: daemonEnv, Builtin: builtin})
	if err != nil {
		fatal("configure-failed", "error", err.Error())
		return 1
	}
	ln, err := net.Listen("tcp", resolved.Address)
	if err != nil {
		fatal("listen-failed", "address", resolved.Address, "error", err.Error())
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger.Info("started", "address", ln.Addr().String(), "version", version.Version,
		"host_key_fingerprint", hostKeyFingerprint(resolved), "ephemeral_host_key", resolved.Ephemeral)
	if err := srv.Serve(ctx, ln); err != nil {
		fatal("exited-with-failure", "error", err.Error())
		return 1
	}
	logger.Info("exited")
	return 0
}

// apply lays the flags over cfg: every flag given explicitly wins over the file; without a
// config file the flags (with their defaults) are the whole configuration and messages name
// them.
func (f *flags) apply(cfg *sshdconfig.Config, n *sshdconfig.Names, set map[string]bool, flagsOnly bool) {
	use := func(name string) bool { return flagsOnly || set[name] }
	if use("address") {
		cfg.Address, n.Address = f.address, "-address"
	}
	if use("hostKey") {
		cfg.HostKeyPEM, cfg.HostKeyFile, n.HostKey = f.hostKey, "", "-hostKey"
	}
	if use("authorizedKey") {
		cfg.AuthorizedKeys, n.AuthorizedKeys = nil, "-authorizedKey"
		if f.authorizedKey != "" {
			cfg.AuthorizedKeys = []string{f.authorizedKey}
		}
	}
	if use("allowUnauthenticatedClients") {
		cfg.AllowUnauthenticatedClients, n.AllowUnauthenticatedClients = f.allowUnauth, "-allowUnauthenticatedClients"
	}
	if use("inheritDaemonEnv") {
		cfg.InheritDaemonEnv, n.InheritDaemonEnv = f.inheritEnv, "-inheritDaemonEnv"
	}
	if use("allowedCiphers") {
		cfg.AllowedCiphers, n.Ciphers = sshdconfig.SplitList(f.ciphers), "-allowedCiphers"
	}
	if use("allowedMACs") {
		cfg.AllowedMACs, n.MACs = sshdconfig.SplitList(f.macs), "-allowedMACs"
	}
	if use("allowedKeyExchanges") {
		cfg.AllowedKeyExchanges, n.KeyExchanges = sshdconfig.SplitList(f.kex), "-allowedKeyExchanges"
	}
	if use("allowedHostKeyAlgorithms") {
		cfg.AllowedHostKeyAlgorithms, n.HostKeyAlgorithms = sshdconfig.SplitList(f.hostKeyAlgs), "-allowedHostKeyAlgorithms"
	}
	if use("logLevel") {
		cfg.LogLevel, n.LogLevel = f.logLevel, "-logLevel"
	}
	if use("gatewayPorts") {
		cfg.GatewayPorts, n.GatewayPorts = f.gatewayPorts, "-gatewayPorts"
	}
}

type secrets struct {
	HostKey          string `json:"host_key"`
	HostKeySet       bool   `json:"host_key_set"`
	AuthorizedKey    string `json:"authorized_key"`
	AuthorizedKeySet bool   `json:"authorized_key_set"`
}

func reexecWithoutSecrets(argv0 string, f *flags, set map[string]bool) error {
	sec := secrets{HostKey: f.hostKey, HostKeySet: set["hostKey"], AuthorizedKey: f.authorizedKey, AuthorizedKeySet: set["authorizedKey"]}
	data, err := json.Marshal(sec)
	if err != nil {
		return err
	}
	if len(data) > maxSecrets {
		return fmt.Errorf("-hostKey and -authorizedKey together exceed %d bytes", maxSecrets)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	w.Close()
	fd := int(r.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return err
	}
	argv := []string{argv0}
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name != "hostKey" && fl.Name != "authorizedKey" {
			argv = append(argv, "-"+fl.Name+"="+fl.Value.String())
		}
	})
	env := append(os.Environ(), secretsFDEnv+"="+strconv.Itoa(fd))
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	return syscall.Exec(self, argv, env)
}

func (f *flags) readSecrets(fdStr string, set map[string]bool) error {
	fd, err := strconv.Atoi(fdStr)
	if err != nil || fd < 3 {
		return fmt.Errorf("invalid %s", secretsFDEnv)
	}
	file := os.NewFile(uintptr(fd), "secrets")
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxSecrets+1))
	if err != nil {
		return fmt.Errorf("reading key material: %v", err)
	}
	var sec secrets
	if err := json.Unmarshal(data, &sec); err != nil {
		return errors.New("reading key material: malformed")
	}
	if sec.HostKeySet {
		f.hostKey, set["hostKey"] = sec.HostKey, true
	}
	if sec.AuthorizedKeySet {
		f.authorizedKey, set["authorizedKey"] = sec.AuthorizedKey, true
	}
	return nil
}

func hostKeyFingerprint(r *sshdconfig.Resolved) string {
	return ssh.FingerprintSHA256(r.HostKey.PublicKey())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
