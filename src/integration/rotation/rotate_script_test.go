package rotation_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rotateHostKey runs scripts/rotate-host-key with extra environment and returns its exit code,
// stdout and stderr.
func rotateHostKey(env []string, args ...string) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "scripts", "rotate-host-key"), args...)
	cmd.Env = append(append(cmd.Environ(), "VERIFY_HOST_KEY_TIMEOUT=5"), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "running rotate-host-key: %v", err)
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// stubs writes a bosh and a credhub that log their arguments; credhub serves `get -n NAME -k
// KEY` from files under dir/store, and bosh hands `int` to the real CLI.
func stubs(dir, directorName string) (env []string, logFile string, store string) {
	logFile = filepath.Join(dir, "calls.log")
	store = filepath.Join(dir, "store")
	Expect(os.MkdirAll(store, 0o700)).To(Succeed())
	boshStub := filepath.Join(dir, "bosh")
	Expect(os.WriteFile(boshStub, []byte(`#!/usr/bin/env bash
set -eu
case "$1" in
  int) exec "`+filepath.Join(repoRoot, "bin", "bosh")+`" "$@" ;;
  env) printf '{"Tables":[{"Content":"","Header":{"name":"Name"},"Rows":[{"name":"`+directorName+`","uuid":"u"}],"Notes":null}],"Blocks":null,"Lines":["Succeeded"]}\n' ;;
  *) printf 'bosh %s\n' "$*" >>"`+logFile+`" ;;
esac
`), 0o755)).To(Succeed())
	credhubStub := filepath.Join(dir, "credhub")
	Expect(os.WriteFile(credhubStub, []byte(`#!/usr/bin/env bash
set -eu
printf 'credhub %s\n' "$*" >>"`+logFile+`"
if [ "$1" = get ]; then
  name="$3"; key="$5"
  cat "`+store+`/$(printf '%s' "$name" | tr / _)-$key"
fi
if [ "$1" = set ]; then
  # remember that the private key file existed while credhub ran
  for a in "$@"; do [ -f "$a" ] && printf 'file %s\n' "$a" >>"`+logFile+`"; done
fi
exit 0
`), 0o755)).To(Succeed())
	return []string{"BOSH=" + boshStub, "CREDHUB=" + credhubStub}, logFile, store
}

func storeValue(store, name, key, value string) {
	Expect(os.WriteFile(filepath.Join(store, strings.ReplaceAll(name, "/", "_")+"-"+key), []byte(value), 0o600)).To(Succeed())
}

var _ = Describe("scripts/rotate-host-key", func() {
	DescribeTable("--dry-run prints the stage's commands",
		func(args []string, want []string) {
			code, out, errOut := rotateHostKey(nil, args...)
			Expect(code).To(Equal(0), errOut)
			for _, w := range want {
				Expect(out).To(ContainSubstring(strings.ReplaceAll(w, "REPO/", repoRoot+"/")))
			}
		},
		Entry("stage1", []string{"--dry-run", "--director", "lite", "--proxy", "127.0.0.1:2222", "stage1", "--", "cf.yml", "-o", "a.yml"},
			[]string{"bosh -n -d cf deploy cf.yml -o a.yml -o " + "REPO/operations/rotate-host-key/stage1.yml",
				`verify-host-key 127.0.0.1:2222 "$(credhub get -n /lite/cf/diego_ssh_proxy_host_key -k public_key_fingerprint)"`}),
		Entry("stage2 on bosh-lite", []string{"--dry-run", "--director", "lite", "--layout", "bosh-lite", "--proxy", "127.0.0.1:2222", "stage2", "--", "cf.yml"},
			[]string{"deploy cf.yml -o REPO/operations/rotate-host-key/bosh-lite/stage2.yml",
				"credhub get -n /lite/cf/diego_ssh_proxy_host_key_next -k public_key_fingerprint"}),
		Entry("stage3 standalone", []string{"--dry-run", "--director", "d", "--layout", "standalone", "stage3", "--", "manifests/app-ssh.yml"},
			[]string{"bosh -n -d app-ssh deploy manifests/app-ssh.yml -o REPO/operations/rotate-host-key/standalone/stage3.yml"}),
		Entry("finish", []string{"--dry-run", "--director", "lite", "-d", "mycf", "finish", "--", "cf.yml"},
			[]string{"credhub get -n /lite/mycf/diego_ssh_proxy_host_key_next -k private_key",
				"credhub set -n /lite/mycf/diego_ssh_proxy_host_key -t ssh",
				"bosh -n -d mycf deploy cf.yml\n",
				"credhub delete -n /lite/mycf/diego_ssh_proxy_host_key_next"}),
		Entry("simple", []string{"--dry-run", "simple", "--", "cf.yml"},
			[]string{"credhub regenerate -n /DIRECTOR_NAME/cf/diego_ssh_proxy_host_key\nbosh -n -d cf deploy cf.yml\n"}),
	)

	DescribeTable("refuses bad usage with exit 2",
		func(args []string, want string) {
			code, _, errOut := rotateHostKey(nil, args...)
			Expect(code).To(Equal(2))
			Expect(errOut).To(ContainSubstring(want))
		},
		Entry("unknown stage", []string{"--dry-run", "stage4", "--", "cf.yml"}, "unknown stage stage4"),
		Entry("no deploy arguments", []string{"--dry-run", "stage1"}, "deploy arguments"),
		Entry("unknown layout", []string{"--dry-run", "--layout", "k8s", "stage1", "--", "cf.yml"}, "unknown layout"),
		Entry("no stage", []string{"--dry-run"}, "STAGE"),
	)

	It("runs a stage, then checks the proxy against the key that stage presents", func() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		nextKey, err := ssh.NewSignerFromKey(priv)
		Expect(err).NotTo(HaveOccurred())
		srv := startKeyServer(nextKey) // the proxy after stage 2

		env, logFile, store := stubs(GinkgoT().TempDir(), "bosh-lite")
		storeValue(store, "/bosh-lite/cf/diego_ssh_proxy_host_key_next", "public_key_fingerprint", ssh.FingerprintLegacyMD5(nextKey.PublicKey())+"\n")
		code, _, errOut := rotateHostKey(env, "--proxy", srv.Addr, "stage2", "--", "cf.yml", "-o", "a.yml")
		Expect(code).To(Equal(0), errOut)
		calls, err := os.ReadFile(logFile)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(calls)).To(Equal(
			"bosh -n -d cf deploy cf.yml -o a.yml -o " + filepath.Join(repoRoot, "operations/rotate-host-key/stage2.yml") + "\n" +
				"credhub get -n /bosh-lite/cf/diego_ssh_proxy_host_key_next -k public_key_fingerprint\n"))

		By("a proxy still presenting another key fails the stage")
		_, other, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		otherKey, err := ssh.NewSignerFromKey(other)
		Expect(err).NotTo(HaveOccurred())
		storeValue(store, "/bosh-lite/cf/diego_ssh_proxy_host_key_next", "public_key_fingerprint", ssh.FingerprintSHA256(otherKey.PublicKey()))
		code, _, errOut = rotateHostKey(env, "--proxy", srv.Addr, "stage2", "--", "cf.yml")
		Expect(code).To(Equal(1))
		Expect(errOut).To(ContainSubstring("host key mismatch"))
	})

	It("finish copies the next key to the usual name, deploys, checks and deletes the next variable", func() {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		key, err := ssh.NewSignerFromKey(priv)
		Expect(err).NotTo(HaveOccurred())
		srv := startKeyServer(key)

		env, logFile, store := stubs(GinkgoT().TempDir(), "lite")
		storeValue(store, "/lite/cf/diego_ssh_proxy_host_key_next", "private_key", "PRIVATE\n")
		storeValue(store, "/lite/cf/diego_ssh_proxy_host_key_next", "public_key", "PUBLIC\n")
		storeValue(store, "/lite/cf/diego_ssh_proxy_host_key", "public_key_fingerprint", ssh.FingerprintSHA256(key.PublicKey())+"=")
		code, _, errOut := rotateHostKey(env, "--proxy", srv.Addr, "finish", "--", "cf.yml")
		Expect(code).To(Equal(0), errOut)
		calls, err := os.ReadFile(logFile)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(calls)), "\n")
		Expect(lines).To(HaveLen(8), string(calls))
		Expect(lines[0]).To(Equal("credhub get -n /lite/cf/diego_ssh_proxy_host_key_next -k private_key"))
		Expect(lines[1]).To(Equal("credhub get -n /lite/cf/diego_ssh_proxy_host_key_next -k public_key"))
		Expect(lines[2]).To(MatchRegexp(`^credhub set -n /lite/cf/diego_ssh_proxy_host_key -t ssh -p (\S+)/private -u (\S+)/public$`))
		Expect(lines[3]).To(HavePrefix("file "))
		Expect(lines[4]).To(HavePrefix("file "))
		Expect(lines[5]).To(Equal("bosh -n -d cf deploy cf.yml"))
		Expect(lines[6]).To(Equal("credhub get -n /lite/cf/diego_ssh_proxy_host_key -k public_key_fingerprint"))
		Expect(lines[7]).To(Equal("credhub delete -n /lite/cf/diego_ssh_proxy_host_key_next"))
		By("the key files are gone afterwards")
		Expect(strings.TrimPrefix(lines[3], "file ")).NotTo(BeAnExistingFile())
	})
})
