package policy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// casts lists the recording directory.
func (e *env) casts() []string {
	entries, err := os.ReadDir(e.castDir)
	if os.IsNotExist(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	return names
}

// lastRecording waits for the n-th channel event and returns its recording_file and
// recording_capped.
func (e *env) lastRecording(n int) (string, bool) {
	chans := e.waitChannels(n)
	last := chans[n-1]
	file, _ := last["recording_file"].(string)
	capped, _ := last["recording_capped"].(bool)
	return file, capped
}

var _ = Describe("session recording", func() {
	It("records a pty session as a cast asciinema prints, and no cast for a command without a terminal", func() {
		e := newEnv("recording:\n  enabled: true\n  directory: CASTDIR\n")
		// script gives ssh a real terminal, as a user's would be.
		cmd := exec.Command("script", "-qec", strings.Join(append([]string{"sshpass", "-e", "ssh", "-tt"}, e.sshArgs()...), " "), "/dev/null")
		cmd.Env = append(os.Environ(), "SSHPASS="+e.rig.Code())
		cmd.Stdin = strings.NewReader("echo rec-$((6*7))\nexit\n")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Expect(string(out)).To(ContainSubstring("rec-42"))

		file, capped := e.lastRecording(1)
		Expect(capped).To(BeFalse())
		Expect(e.casts()).To(Equal([]string{file}))
		path := filepath.Join(e.castDir, file)
		info, err := os.Stat(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))

		f, err := os.Open(path)
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		sc := bufio.NewScanner(f)
		Expect(sc.Scan()).To(BeTrue())
		var header map[string]any
		Expect(json.Unmarshal(sc.Bytes(), &header)).To(Succeed())
		Expect(header["version"]).To(Equal(2.0))
		Expect(header["width"]).To(BeNumerically(">", 0))
		Expect(header["height"]).To(BeNumerically(">", 0))

		// asciinema cat wants a terminal of its own
		printed, err := exec.Command("script", "-qec", "asciinema cat "+path, "/dev/null").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(printed))
		Expect(string(printed)).To(ContainSubstring("rec-42"))
		// input is not recorded by default: the typed command line appears only as echoed output
		Expect(string(mustRead(path))).NotTo(ContainSubstring(`"i"`))

		r := e.ssh(nil, nil, "echo no-terminal")
		Expect(r.Code).To(Equal(0), r.Stderr)
		file, _ = e.lastRecording(2)
		Expect(file).To(BeEmpty())
		Expect(e.casts()).To(HaveLen(1))
		Expect(e.rig.Metric(`ssh_proxy_recordings_total{result="recorded"}`)).To(Equal(1.0))
	})

	It("stops a recording at its size cap while the session goes on, and deletes the oldest casts at the directory cap", func() {
		e := newEnv("recording:\n  enabled: true\n  directory: CASTDIR\n  max_file_bytes: 4096\n  max_total_bytes: 8192\n")
		r := e.ssh(strings.NewReader(""), []string{"-tt"}, "head -c 20000 /dev/zero | tr '\\0' a; echo; echo after-the-cap")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(strings.Count(r.Stdout, "a")).To(BeNumerically(">=", 20000))
		Expect(r.Stdout).To(ContainSubstring("after-the-cap"))
		capFile, capped := e.lastRecording(1)
		Expect(capped).To(BeTrue())
		content := mustRead(filepath.Join(e.castDir, capFile))
		Expect(len(content)).To(BeNumerically("<=", 4096))
		Expect(string(content)).To(ContainSubstring(`"m"`))
		Expect(string(content)).NotTo(ContainSubstring("after-the-cap"))
		Expect(e.rig.Metric(`ssh_proxy_recordings_total{result="capped"}`)).To(Equal(1.0))

		// each of these casts is some 2 KiB: a start needs room for a whole file (4096) beside
		// what is there, so by the third one the oldest casts go, oldest first
		all := []string{capFile}
		for i := range 3 {
			r = e.ssh(strings.NewReader(""), []string{"-tt"}, "head -c 2000 /dev/zero | tr '\\0' b")
			Expect(r.Code).To(Equal(0), r.Stderr)
			f, _ := e.lastRecording(2 + i)
			Expect(f).NotTo(BeEmpty())
			all = append(all, f)
		}
		kept := e.casts()
		Expect(kept).NotTo(ContainElement(capFile))
		Expect(len(kept)).To(BeNumerically("<", len(all)))
		Expect(kept).To(Equal(all[len(all)-len(kept):]), "the newest casts are kept")
		total := 0
		for _, n := range kept {
			total += len(mustRead(filepath.Join(e.castDir, n)))
		}
		Expect(total).To(BeNumerically("<=", 8192))
	})
})

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return b
}
