package rotation_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
)

// process is one started binary (sshd or ssh-proxy) whose output goes to a buffer that is only
// shown when a spec fails. Its owner stops it with stop; DeferCleanup does so at the latest.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *gbytes.Buffer
	exited chan struct{}
	once   sync.Once
}

func startProcess(name string, argv []string) *process {
	GinkgoHelper()
	p := &process{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: gbytes.NewBuffer(), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	Expect(p.cmd.Start()).To(Succeed())
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	DeferCleanup(func() {
		p.stop()
		if CurrentSpecReport().Failed() {
			GinkgoWriter.Printf("---- %s %s output:\n%s\n", p.name, p.cmd.Path, p.output())
		}
	})
	return p
}

// stop sends SIGTERM, waits up to 10s and then kills. It is safe to call more than once.
func (p *process) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// output is what the process wrote so far (logs only: neither binary logs keys).
func (p *process) output() string { return string(p.out.Contents()) }

// waitSSH waits (at most 30s) until addr answers with an SSH version banner, failing early
// when the process exits.
func (p *process) waitSSH(addr string) {
	GinkgoHelper()
	Eventually(func() error {
		select {
		case <-p.exited:
			return StopTrying(p.name + " exited: " + p.output())
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "SSH-2.0-") {
			return errors.New("not an SSH banner: " + strconv.Quote(line))
		}
		return nil
	}).WithTimeout(30*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "%s on %s", p.name, addr)
}

// renderJob renders one job of an interpolated manifest with the real templates
// (scripts/lib/render-job.rb) into outDir and returns the bpm process's command line with the
// executable replaced by binary.
func renderJob(manifest, group, job, outDir, binary string) []string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ruby", filepath.Join(repoRoot, "scripts", "lib", "render-job.rb"),
		manifest, group, job, outDir, filepath.Dir(binary))
	cmd.Dir = repoRoot
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	data, err := os.ReadFile(filepath.Join(outDir, "command"))
	Expect(err).NotTo(HaveOccurred())
	argv := strings.Fields(string(data))
	Expect(argv).NotTo(BeEmpty())
	Expect(filepath.Base(argv[0])).To(Equal(map[string]string{"ssh_proxy": "ssh-proxy", "sshd": "sshd"}[job]),
		"the executable the rendered bpm.yml starts")
	argv[0] = binary
	return argv
}

// writeYAML writes v as YAML to dir/name (0600: it may hold keys) and returns the path.
func writeYAML(dir, name string, v any) string {
	GinkgoHelper()
	data, err := yaml.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, data, 0o600)).To(Succeed())
	return path
}

// localSSHD is our sshd playing the app instance behind the proxy's static target, rendered
// from manifests/run-local.yml's sshd instance group like scripts/run-local does, with bosh's
// own vars store for its keys.
type localSSHD struct {
	Addr        string
	Fingerprint string // its host key's fingerprint, pinned by the static target
	LoginKey    string // the private key the proxy logs in with
	proc        *process
}

func startLocalSSHD() *localSSHD {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort())
	vars := filepath.Join(dir, "vars.yml")
	manifest := bosh("int", "manifests/run-local.yml", "--vars-store", vars,
		"-v", "sshd_address="+addr, "-v", "proxy_address=127.0.0.1:1",
		"-v", "health_address=127.0.0.1:1", "-v", "debug_address=127.0.0.1:0", "-v", "log_level=info")
	manifestFile := filepath.Join(dir, "manifest.yml")
	Expect(os.WriteFile(manifestFile, manifest, 0o600)).To(Succeed())
	argv := renderJob(manifestFile, "sshd", "sshd", filepath.Join(dir, "job"), sshdBinary)
	s := &localSSHD{
		Addr:        addr,
		Fingerprint: strings.TrimSpace(string(bosh("int", vars, "--path", "/app_ssh_sshd_host_key/public_key_fingerprint"))),
		LoginKey:    string(bosh("int", vars, "--path", "/app_ssh_proxy_login/private_key")),
	}
	s.proc = startProcess("sshd", argv)
	s.proc.waitSSH(addr)
	return s
}

// layout is one way app-ssh is deployed: which manifest and ops files, where ssh_proxy runs,
// which variable is its host key, and where consumers read the fingerprint they pin.
type layout struct {
	name     string
	base     []string         // manifest and base ops files, relative to the repository root
	stage    func(int) string // the rotation ops file of a stage (1-3)
	group    string           // instance group running ssh_proxy
	variable string           // the host key's variable
	// advertised is the manifest path of the fingerprint clients are told to expect: Cloud
	// Controller's app_ssh.host_key_fingerprint in cf-deployment, the ssh_proxy link's
	// property in the standalone manifest.
	advertised string
}

func (l layout) props() string {
	return "/instance_groups/name=" + l.group + "/jobs/name=ssh_proxy/properties"
}

var (
	cfDeploymentLayout = layout{
		name: "cf-deployment",
		base: []string{cfDeploymentPath("cf-deployment.yml"),
			"-o", "operations/use-app-ssh-release.yml", "-o", "operations/enable-app-ssh.yml"},
		stage:      func(n int) string { return "operations/rotate-host-key/stage" + itoa(n) + ".yml" },
		group:      "scheduler",
		variable:   "diego_ssh_proxy_host_key",
		advertised: "/instance_groups/name=api/jobs/name=cloud_controller_ng/properties/app_ssh/host_key_fingerprint",
	}
	standaloneLayout = layout{
		name:       "standalone",
		base:       []string{"manifests/app-ssh.yml"},
		stage:      func(n int) string { return "operations/rotate-host-key/standalone/stage" + itoa(n) + ".yml" },
		group:      "ssh-proxy",
		variable:   "app_ssh_proxy_host_key",
		advertised: "/instance_groups/name=ssh-proxy/jobs/name=ssh_proxy/properties/diego/ssh_proxy/host_key_fingerprint",
	}
)

// staticTargetUser is the SSH user name of the local sshd behind the proxy.
const staticTargetUser = "local/0"

// rig deploys one layout the way the director would, with config-server as the variable store,
// except that the real ssh-proxy runs here on 127.0.0.1: a local ops file moves its listeners to
// 127.0.0.1 and its audit log into a temporary directory, turns cf/diego auth, backend TLS and
// Loggregator off (no UAA, CC, BBS or agent here) and adds our sshd as the static target
// "local". Host keys, next keys and fingerprints are the layout's own.
type rig struct {
	l          layout
	cs         *configServer
	dir        string
	ProxyAddr  string
	healthAddr string
	sshd       *localSSHD
	client     *openssh
	localVars  map[string]any
	localOps   []map[string]any
	proxy      *process
	deploys    int
	// penaltiesOnLoopback makes the proxy's per-source penalties apply to 127.0.0.1, where the
	// specs run: nothing exempt, and client addresses declared preserved (by default neither).
	penaltiesOnLoopback bool
}

func newRig(l layout) *rig {
	GinkgoHelper()
	r := &rig{
		l:          l,
		cs:         startConfigServer(),
		dir:        GinkgoT().TempDir(),
		ProxyAddr:  "127.0.0.1:" + strconv.Itoa(freePort()),
		healthAddr: "127.0.0.1:" + strconv.Itoa(freePort()),
		sshd:       startLocalSSHD(),
		client:     newOpenSSH(),
	}
	r.client.user = staticTargetUser
	r.localVars = map[string]any{
		"rotation_test_proxy_address":    r.ProxyAddr,
		"rotation_test_health_address":   r.healthAddr,
		"rotation_test_audit_log":        filepath.Join(r.dir, "audit.log"),
		"rotation_test_sshd_address":     r.sshd.Addr,
		"rotation_test_sshd_fingerprint": r.sshd.Fingerprint,
		"rotation_test_login_key":        r.sshd.LoginKey,
		"rotation_test_user_key":         strings.TrimSpace(string(ssh.MarshalAuthorizedKey(r.client.key.PublicKey()))),
	}
	set := func(path string, value any) {
		r.localOps = append(r.localOps, map[string]any{"type": "replace", "path": l.props() + path, "value": value})
	}
	set("/diego/ssh_proxy/listen_addr?", "((rotation_test_proxy_address))")
	set("/diego/ssh_proxy/healthcheck_listen_addr?", "((rotation_test_health_address))")
	set("/diego/ssh_proxy/audit_log_file?", "((rotation_test_audit_log))")
	set("/diego/ssh_proxy/enable_cf_auth?", false)
	set("/diego/ssh_proxy/enable_diego_auth?", false)
	set("/backends?", map[string]any{"tls": map[string]any{"enabled": false}})
	// No Loggregator agent here either, and the agent certificates are other variables
	// this rig does not generate.
	set("/loggregator?", map[string]any{"use_v2_api": false})
	set("/diego/ssh_proxy/static_targets?", []any{map[string]any{
		"name":             "local",
		"instances":        []string{"((rotation_test_sshd_address))"},
		"host_fingerprint": "((rotation_test_sshd_fingerprint))",
		"private_key":      "((rotation_test_login_key))",
		"authorized_keys":  []string{"((rotation_test_user_key))"},
	}})
	return r
}

// additionalHostKeys makes every later deploy present these keys beside host_key
// (diego.ssh_proxy.additional_host_keys).
func (r *rig) additionalHostKeys(pems ...string) {
	names := make([]string, 0, len(pems))
	for i, p := range pems {
		name := "rotation_test_additional_" + itoa(i)
		r.localVars[name] = p
		names = append(names, "(("+name+"))")
	}
	r.localOps = append(r.localOps, map[string]any{"type": "replace",
		"path": r.l.props() + "/diego/ssh_proxy/additional_host_keys?", "value": names})
}

// appendNextHostKeys makes every later deploy announce these keys after those the stage's ops
// file lists in diego.ssh_proxy.next_host_keys (a deploy needs a stage that sets the list).
func (r *rig) appendNextHostKeys(pems ...string) {
	for i, p := range pems {
		name := "rotation_test_next_" + itoa(i)
		r.localVars[name] = p
		r.localOps = append(r.localOps, map[string]any{"type": "replace",
			"path": r.l.props() + "/diego/ssh_proxy/next_host_keys/-", "value": "((" + name + "))"})
	}
}

func (r *rig) manifestArgs(stage int) []string {
	args := append([]string{"int"}, r.l.base...)
	if stage > 0 {
		args = append(args, "-o", r.l.stage(stage))
	}
	ops := r.localOps[:len(r.localOps):len(r.localOps)]
	if r.penaltiesOnLoopback {
		ops = append(ops,
			map[string]any{"type": "replace", "path": r.l.props() + "/diego/ssh_proxy/per_source_penalty_exempt_list?", "value": []string{}},
			map[string]any{"type": "replace", "path": r.l.props() + "/diego/ssh_proxy/client_addresses_preserved?", "value": true})
	}
	// The job's debug server would take the fixed 127.0.0.1:17016 that other proxies on this
	// machine may hold; an ephemeral port keeps it on, without the clash.
	ops = append(ops, map[string]any{"type": "replace", "path": r.l.props() + "/diego/ssh_proxy/debug_addr?", "value": "127.0.0.1:0"})
	return append(args, "-o", writeYAML(r.dir, "local-ops.yml", ops))
}

// generateVariables does what the director does before a deploy: every `type: ssh` variable the
// manifest declares is generated in config-server (no-overwrite: existing values stay), and the
// values read back become the vars file bosh int interpolates with.
func (r *rig) generateVariables(stage int) string {
	GinkgoHelper()
	var decl []struct {
		Name string `yaml:"name"`
		Type string `yaml:"type"`
	}
	Expect(yaml.Unmarshal(bosh(append(r.manifestArgs(stage), "--path", "/variables")...), &decl)).To(Succeed())
	values := map[string]any{}
	for _, d := range decl {
		if d.Type != "ssh" {
			continue
		}
		status, _ := r.cs.generate(d.Name)
		Expect(status).To(BeElementOf(200, 201), "generating %s", d.Name)
		v := r.cs.get(d.Name).Value
		values[d.Name] = map[string]string{
			"private_key": v.PrivateKey, "public_key": v.PublicKey, "public_key_fingerprint": v.PublicKeyFingerprint,
		}
	}
	Expect(values).To(HaveKey(r.l.variable))
	return writeYAML(r.dir, "config-server-vars.yml", values)
}

// deployment is what one deploy published.
type deployment struct {
	Advertised string // the fingerprint clients are told to expect (MD5 colon-hex from the store)
	Link       string // diego.ssh_proxy.host_key_fingerprint (the ssh_proxy link)
	Props      proxyProps
}

// deploy interpolates the layout at stage (0: no rotation ops file), renders ssh_proxy with the
// real templates, checks the config with -check-config and (re)starts the proxy on its address.
func (r *rig) deploy(stage int) deployment {
	GinkgoHelper()
	vars := r.generateVariables(stage)
	args := append(r.manifestArgs(stage), "-l", vars, "-l", writeYAML(r.dir, "local-vars.yml", r.localVars))
	manifest := bosh(args...)
	r.deploys++
	manifestFile := filepath.Join(r.dir, "manifest-"+itoa(r.deploys)+".yml")
	Expect(os.WriteFile(manifestFile, manifest, 0o600)).To(Succeed())

	var d deployment
	Expect(yaml.Unmarshal(bosh("int", manifestFile, "--path", r.l.props()), &d.Props)).To(Succeed())
	d.Link = d.Props.Diego.SSHProxy.HostKeyFingerprint
	d.Advertised = strings.TrimSpace(string(bosh("int", manifestFile, "--path", r.l.advertised)))
	Expect(d.Advertised).NotTo(ContainSubstring("(("), "the advertised fingerprint is not interpolated")

	argv := renderJob(manifestFile, r.l.group, "ssh_proxy", filepath.Join(r.dir, "job-"+itoa(r.deploys)), proxyBinary)
	Expect(argv).To(HaveLen(3))
	Expect(argv[1]).To(Equal("-config"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	check := exec.CommandContext(ctx, proxyBinary, append([]string{"-check-config"}, argv[2:]...)...)
	check.WaitDelay = 5 * time.Second
	out, err := check.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "ssh-proxy -check-config of the rendered config: %s", out)

	if r.proxy != nil {
		r.proxy.stop()
	}
	r.proxy = startProcess("ssh-proxy", argv)
	r.proxy.waitSSH(r.ProxyAddr)
	return d
}

// currentVariable and nextVariable are the layout's key variables as config-server holds them now.
func (r *rig) currentVariable() sshValue { return r.cs.get(r.l.variable).Value }
func (r *rig) nextVariable() sshValue    { return r.cs.get(r.l.variable + "_next").Value }

func publicKeyOf(v sshValue) ssh.PublicKey {
	GinkgoHelper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(v.PublicKey))
	Expect(err).NotTo(HaveOccurred())
	Expect(string(k.Marshal())).To(Equal(string(parseSigner(v.PrivateKey).PublicKey().Marshal())),
		"config-server's public_key is the private key's public half")
	return k
}

// expectPresents checks with scripts/verify-host-key that the proxy presents key: the store's
// MD5 colon-hex and the SHA256 form pass.
func expectPresents(addr string, key ssh.PublicKey) {
	GinkgoHelper()
	for _, fp := range []string{ssh.FingerprintLegacyMD5(key), ssh.FingerprintSHA256(key)} {
		code, out := verify(addr, fp)
		Expect(code).To(Equal(0), "verify-host-key %s %s: %s", addr, fp, out)
	}
}

// expectNotPresented checks that verify-host-key refuses key's fingerprints with exit status 1.
func expectNotPresented(addr string, key ssh.PublicKey) {
	GinkgoHelper()
	for _, fp := range []string{ssh.FingerprintLegacyMD5(key), ssh.FingerprintSHA256(key)} {
		code, out := verify(addr, fp)
		Expect(code).To(Equal(1), "verify-host-key %s %s: %s", addr, fp, out)
	}
}

func readKnownHosts(file string) ([]ssh.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var keys []ssh.PublicKey
	for i := 0; i < 100 && len(strings.TrimSpace(string(data))) > 0; i++ {
		_, _, k, _, rest, err := ssh.ParseKnownHosts(data)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		data = rest
	}
	return keys, nil
}

// loginUntil logs in with `cat` as the remote command and keeps the session open (stdin open)
// until known_hosts holds exactly want, at most 20s; then it closes stdin, which ends the
// remote cat, and expects a clean exit. OpenSSH records announced keys only once the proxy's
// proof arrived, which a session ending at once (`ssh … true`) may not wait for.
func (o *openssh) loginUntil(addr string, want ...ssh.PublicKey) {
	GinkgoHelper()
	host, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", o.args(host, port, "cat")...)
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	Expect(err).NotTo(HaveOccurred())
	out := gbytes.NewBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	Expect(cmd.Start()).To(Succeed())
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		_ = stdin.Close()
		cancel()
		<-exited
	}()
	hasExited := func() bool {
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
	Eventually(func() ([]string, error) {
		gone := hasExited()
		keys, err := readKnownHosts(o.knownHosts)
		if gone && (err != nil || !sameKeys(keys, want)) {
			return nil, StopTrying("ssh ended before known_hosts was updated: " + errString(waitErr) + ": " + string(out.Contents()))
		}
		return fps(keys...), err
	}).WithTimeout(20*time.Second).WithPolling(50*time.Millisecond).Should(ConsistOf(fps(want...)), "known_hosts after a login")
	Expect(stdin.Close()).To(Succeed())
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		Fail("ssh did not end within 20s after its stdin closed: " + string(out.Contents()))
	}
	Expect(waitErr).NotTo(HaveOccurred(), string(out.Contents()))
	Expect(string(out.Contents())).NotTo(ContainSubstring("IDENTIFICATION HAS CHANGED"))
}

// loginRefused runs a strict login and expects OpenSSH to refuse the host key itself.
func (o *openssh) loginRefused(addr string) string {
	GinkgoHelper()
	host, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", o.args(host, port, "true")...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	Expect(errors.As(err, &ee)).To(BeTrue(), "ssh should fail: %v: %s", err, out)
	Expect(ee.ExitCode()).To(Equal(255), string(out))
	Expect(string(out)).To(ContainSubstring("Host key verification failed"))
	return string(out)
}

func sameKeys(a, b []ssh.PublicKey) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, k := range a {
		seen[string(k.Marshal())]++
	}
	for _, k := range b {
		seen[string(k.Marshal())]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// keyscan returns the keys `ssh-keyscan -t keyType` sees at addr (none when the server has
// no key of that type).
func keyscan(addr, keyType string) []ssh.PublicKey {
	GinkgoHelper()
	host, port, err := net.SplitHostPort(addr)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh-keyscan", "-T", "5", "-t", keyType, "-p", port, host)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 && strings.TrimSpace(string(out)) == "" {
		return nil // ssh-keyscan's "no key of that type"
	}
	Expect(err).NotTo(HaveOccurred(), stderr.String())
	var keys []ssh.PublicKey
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(fields[1:], " ")))
		Expect(err).NotTo(HaveOccurred(), line)
		keys = append(keys, k)
	}
	return keys
}

// pemOf encodes a crypto private key (ed25519, ECDSA, ...) as an OpenSSH PEM private key.
func pemOf(key any) string {
	GinkgoHelper()
	block, err := ssh.MarshalPrivateKey(key, "")
	Expect(err).NotTo(HaveOccurred())
	return string(pem.EncodeToMemory(block))
}

// fps are keys' SHA256 fingerprints: readable in a failure, one per distinct key.
func fps(keys ...ssh.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, ssh.FingerprintSHA256(k))
	}
	return out
}
