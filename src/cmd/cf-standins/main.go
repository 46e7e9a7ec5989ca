// Command cf-standins runs DEVELOPMENT STAND-INS for UAA, Cloud Controller, the Diego BBS and
// a Loggregator agent's v2 ingress on 127.0.0.1, so `scripts/run-local --cf` can show `ssh cf:<app-guid>/0@…` working on one
// machine. They are not Cloud Foundry components and must never be deployed: they keep
// everything in memory, trust a throw-away certificate authority made at start, and know one
// app, whose only instance is the local sshd.
//
//	cf-standins serve -dir DIR -sshd-address 127.0.0.1:2022 -sshd-host-key-fingerprint FP \
//	    -login-key-file KEY -uaa-client-secret-file FILE
//	cf-standins code -dir DIR     # prints a fresh one-time code (like `cf ssh-code`)
//	cf-standins logs -dir DIR     # prints the app's log lines, as `cf logs --recent` would
//
// serve writes into DIR: ca.crt (the CA of every stand-in's certificate), bbs-client.crt/.key
// (the client certificate the BBS stand-in accepts), loggregator-client.crt/.key (the one the
// ingress stand-in accepts; its own certificate names "metron"), admin-token and, last,
// standins.json naming every address; it runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/ingressstub"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

// StateFile is the name of the JSON file serve writes once every stand-in listens.
const StateFile = "standins.json"

// State is the content of StateFile.
type State struct {
	UAAURL      string `json:"uaa_url"`  // scheme://host, no port (diego.ssh_proxy.uaa.url)
	UAAPort     int    `json:"uaa_port"` // diego.ssh_proxy.uaa.port
	UAATokenURL string `json:"uaa_token_url"`
	CCURL       string `json:"cc_url"`      // diego.ssh_proxy.cc.internal_url
	BBSAddress  string `json:"bbs_address"` // host:port (diego.ssh_proxy.bbs.api_location)
	// LoggregatorPort is the ingress stand-in's port on 127.0.0.1 (loggregator.v2_api_port).
	LoggregatorPort int    `json:"loggregator_port"`
	AdminURL        string `json:"admin_url"`
	AppGUID         string `json:"app_guid"`
	ProcessGUID     string `json:"process_guid"`
	InstanceGUID    string `json:"instance_guid"`
	PID             int    `json:"pid"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "code":
		err = code(os.Args[2:])
	case "logs":
		err = logs(os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cf-standins:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `cf-standins: development stand-ins for UAA, Cloud Controller and the BBS (not for production)
  cf-standins serve -dir DIR -sshd-address HOST:PORT -sshd-host-key-fingerprint FP -login-key-file FILE -uaa-client-secret-file FILE
  cf-standins code -dir DIR
  cf-standins logs -dir DIR`)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// newGUID returns a random version-4 style guid.
func newGUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

type serveFlags struct {
	dir, sshdAddress, sshdFingerprint, loginKeyFile, clientID, clientSecretFile, logLevel string
}

func parseServeFlags(args []string) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("cf-standins serve", flag.ContinueOnError)
	fs.StringVar(&f.dir, "dir", "", "directory for certificates, the admin token and standins.json")
	fs.StringVar(&f.sshdAddress, "sshd-address", "", "host:port of the sshd that plays the app instance")
	fs.StringVar(&f.sshdFingerprint, "sshd-host-key-fingerprint", "", "fingerprint of that sshd's host key (put into the diego-ssh route)")
	fs.StringVar(&f.loginKeyFile, "login-key-file", "", "PEM private key the proxy logs in to the sshd with (put into the diego-ssh route)")
	fs.StringVar(&f.clientID, "uaa-client-id", "ssh-proxy", "UAA client the proxy authenticates as")
	fs.StringVar(&f.clientSecretFile, "uaa-client-secret-file", "", "file holding that client's secret")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.dir == "" {
		problems = append(problems, "-dir: must be set")
	}
	if _, _, err := net.SplitHostPort(f.sshdAddress); err != nil {
		problems = append(problems, fmt.Sprintf("-sshd-address: %v", err))
	}
	if _, err := fingerprint.Parse(f.sshdFingerprint); err != nil {
		problems = append(problems, fmt.Sprintf("-sshd-host-key-fingerprint: %v", err))
	}
	if f.loginKeyFile == "" {
		problems = append(problems, "-login-key-file: must be set")
	}
	if f.clientSecretFile == "" {
		problems = append(problems, "-uaa-client-secret-file: must be set")
	}
	if len(problems) > 0 {
		return f, errors.New(strings.Join(problems, "\n"))
	}
	return f, nil
}

func serve(args []string) error {
	f, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, f.logLevel, "cf-standins")
	if err != nil {
		return err
	}
	loginKey, err := os.ReadFile(f.loginKeyFile)
	if err != nil {
		return fmt.Errorf("-login-key-file: %w", err)
	}
	secret, err := os.ReadFile(f.clientSecretFile)
	if err != nil {
		return fmt.Errorf("-uaa-client-secret-file: %w", err)
	}
	host, portText, _ := net.SplitHostPort(f.sshdAddress)
	sshdPort, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return fmt.Errorf("-sshd-address: bad port %q", portText)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return err
	}
	// A stale state file would make a waiting script read old addresses.
	_ = os.Remove(filepath.Join(f.dir, StateFile))

	ca, err := certs.NewCA("app-ssh development stand-ins CA")
	if err != nil {
		return err
	}
	server, err := ca.Issue("app-ssh development stand-in", "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	client, err := ca.Issue("ssh-proxy (development stand-in client)")
	if err != nil {
		return err
	}
	if _, _, err := client.WriteFiles(f.dir, "bbs-client"); err != nil {
		return err
	}
	if _, _, err := client.WriteFiles(f.dir, "loggregator-client"); err != nil {
		return err
	}
	metron, err := ca.Issue("metron", "metron")
	if err != nil {
		return err
	}
	adminToken := randomHex(32)
	if err := os.WriteFile(filepath.Join(f.dir, "admin-token"), []byte(adminToken+"\n"), 0o600); err != nil {
		return err
	}

	uaa := uaastub.New(f.clientID, strings.TrimSpace(string(secret)), certs.ServerTLS(server, nil))
	defer uaa.Close()
	cc := ccstub.New(certs.ServerTLS(server, nil))
	defer cc.Close()
	cc.SetValidator(uaa.Validator())
	bbsStub := bbsstub.New(certs.ServerTLS(server, ca.Pool()))
	defer bbsStub.Close()
	ingress := ingressstub.New("127.0.0.1:0", certs.ServerTLS(metron, ca.Pool()))
	defer ingress.Close()

	st := State{AppGUID: newGUID(), InstanceGUID: newGUID(), PID: os.Getpid()}
	st.ProcessGUID = st.AppGUID + "-" + newGUID()
	cc.AddApp(st.AppGUID, st.ProcessGUID, 1, true)
	route, err := json.Marshal(map[string]any{
		"container_port":   2222,
		"host_fingerprint": f.sshdFingerprint,
		"private_key":      string(loginKey),
		"user":             "vcap",
	})
	if err != nil {
		return err
	}
	// Tagged as Cloud Controller tags a web process, so its log lines land in the app's stream.
	bbsStub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: st.ProcessGUID, Instances: 1, Routes: map[string][]byte{bbs.DiegoSSHRouteKey: route},
		LogGUID: st.AppGUID, MetricTags: map[string]bbs.MetricTagValue{
			"source_id": {Static: st.AppGUID}, "app_id": {Static: st.AppGUID}, "app_name": {Static: "local-app"},
			"process_type": {Static: "web"}, "instance_id": {Dynamic: bbs.MetricTagIndex},
			"process_instance_id": {Dynamic: bbs.MetricTagInstanceGUID},
		}})
	bbsStub.SetActualLRPs(st.ProcessGUID, bbs.ActualLRP{
		Index: 0, Domain: "cf-apps", InstanceGUID: st.InstanceGUID, CellID: "local-cell",
		State: bbs.StateRunning, Address: host, InstanceAddress: host,
		PreferredAddress: bbs.PreferredAddressHost,
		Ports:            []bbs.PortMapping{{ContainerPort: 2222, HostPort: uint32(sshdPort)}},
	})

	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	admin := &http.Server{
		Handler:           adminHandler(adminToken, uaa, ingress, logger),
		ReadHeaderTimeout: 5 * time.Second,
	}
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		_ = admin.Serve(adminLn)
	}()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = admin.Shutdown(ctx)
		<-adminDone
	}()

	uaaHost, uaaPort, err := splitURL(uaa.BaseURL())
	if err != nil {
		return err
	}
	st.UAAURL, st.UAAPort, st.UAATokenURL = uaaHost, uaaPort, uaa.URL()
	st.CCURL = cc.URL()
	st.BBSAddress = bbsStub.Addr()
	st.LoggregatorPort = ingress.Port()
	st.AdminURL = "http://" + adminLn.Addr().String()
	if err := writeState(f.dir, st); err != nil {
		return err
	}
	defer os.Remove(filepath.Join(f.dir, StateFile))
	logger.Info("cf-standins.ready", "uaa", st.UAATokenURL, "cc", st.CCURL, "bbs", st.BBSAddress, "loggregator", ingress.Addr(),
		"app_guid", st.AppGUID, "process_guid", st.ProcessGUID, "sshd", f.sshdAddress)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	logger.Info("cf-standins.stopping")
	return nil
}

// splitURL turns https://127.0.0.1:1234 into ("https://127.0.0.1", 1234).
func splitURL(u string) (string, int, error) {
	i := strings.LastIndexByte(u, ':')
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", u)
	}
	p, err := strconv.Atoi(u[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", u)
	}
	return u[:i], p, nil
}

func writeState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}

// adminHandler serves, for callers holding the admin token (the file only the owner of the
// state directory reads), POST /v1/ssh-code: a fresh one-time code for the default stand-in
// user, and GET /v1/logs?source_id=GUID: the log lines the ingress stand-in received for that
// source (every source without the parameter), one per line as `cf logs` prints them.
func adminHandler(token string, uaa *uaastub.Server, ingress *ingressstub.Server, logger *slog.Logger) http.Handler {
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ssh-code", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		logger.Info("cf-standins.code-issued")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, uaa.IssueCode()+"\n")
	})
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		for _, e := range ingress.Logs(r.URL.Query().Get("source_id")) {
			_, _ = io.WriteString(w, ingressstub.FormatLog(e)+"\n")
		}
	})
	return mux
}

func code(args []string) error {
	fs := flag.NewFlagSet("cf-standins code", flag.ContinueOnError)
	dir := fs.String("dir", "", "the directory serve writes into")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline for the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return admin(*dir, http.MethodPost, "/v1/ssh-code", *timeout)
}

// logs prints the app's log lines the ingress stand-in received (the app of standins.json
// unless -source-id names another source, "" for all).
func logs(args []string) error {
	fs := flag.NewFlagSet("cf-standins logs", flag.ContinueOnError)
	dir := fs.String("dir", "", "the directory serve writes into")
	source := fs.String("source-id", "app", `source id to show ("app": the stand-ins' app; "": every source)`)
	timeout := fs.Duration("timeout", 5*time.Second, "deadline for the request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *source == "app" {
		st, err := readState(*dir)
		if err != nil {
			return err
		}
		*source = st.AppGUID
	}
	return admin(*dir, http.MethodGet, "/v1/logs?source_id="+url.QueryEscape(*source), *timeout)
}

func readState(dir string) (State, error) {
	var st State
	if dir == "" {
		return st, errors.New("-dir: must be set")
	}
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return st, fmt.Errorf("stand-ins not running? %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", StateFile, err)
	}
	return st, nil
}

// admin calls the admin endpoint with the admin token and prints the answer.
func admin(dir, method, path string, timeout time.Duration) error {
	st, err := readState(dir)
	if err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, st.AdminURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin endpoint answered %s", resp.Status)
	}
	fmt.Print(string(body))
	return nil
}
