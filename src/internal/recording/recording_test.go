package recording

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

func newManager(t *testing.T, mut func(*Config)) (*Manager, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rec")
	c := DefaultConfig()
	c.Enabled, c.Directory = true, dir
	if mut != nil {
		mut(&c)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	m, err := NewManager(c)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// readCast parses a cast: the header and the events, failing on any line that is not JSON.
func readCast(t *testing.T, path string) (map[string]any, [][]any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	var header map[string]any
	var events [][]any
	for sc.Scan() {
		if header == nil {
			if err := json.Unmarshal(sc.Bytes(), &header); err != nil {
				t.Fatalf("header %q: %v", sc.Text(), err)
			}
			continue
		}
		var ev []any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	return header, events
}

func asciinemaCat(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("asciinema")
	if err != nil {
		t.Fatal("asciinema is not installed (scripts/test installs the Debian package)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// asciinema cat reads its controls from /dev/tty: give it a terminal as controlling tty
	// and stdin, and read what it prints from a pipe (no terminal output processing).
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptm.Close()
	defer tty.Close()
	cmd := exec.CommandContext(ctx, bin, "cat", path)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "LANG=C.UTF-8")
	cmd.Stdin = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("asciinema cat: %v: %s", err, stderr.String())
	}
	return string(out)
}

func TestCastIsWhatAsciinemaPlays(t *testing.T) {
	m, dir := newManager(t, nil)
	start := time.Date(2026, 12, 1, 14, 30, 0, 0, time.UTC)
	r, err := m.Start(Header{Width: 120, Height: 40, Start: start, Term: "xterm-256color", Shell: "/bin/bash"}, "0123abcd", 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "20261201T143000.000Z-0123abcd-3.cast" {
		t.Fatalf("name %q", r.Name())
	}
	euro := []byte("€") // e2 82 ac, split across writes
	r.Output([]byte("$ echo \"hi\"\r\nhi\tw"))
	r.Output([]byte("ö"[:1]))
	r.Output([]byte("ö"[1:]))
	r.Input([]byte("secret-password\r"))
	r.Output(append([]byte(" 10 "), euro[:1]...))
	r.Resize(100, 30)
	r.Output(euro[1:2])
	r.Output(append(euro[2:], "\x1b[0m\x07 done\r\n"...))
	res := r.Close()
	if res.Err != nil || res.Capped || res.File != r.Name() {
		t.Fatalf("result %+v", res)
	}
	path := filepath.Join(dir, r.Name())
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != res.Bytes {
		t.Fatalf("file %v %v (result %d bytes)", st, err, res.Bytes)
	}
	dst, _ := os.Stat(dir)
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", dst.Mode())
	}

	header, events := readCast(t, path)
	want := map[string]any{"version": 2.0, "width": 120.0, "height": 40.0, "timestamp": float64(start.Unix()),
		"env": map[string]any{"TERM": "xterm-256color", "SHELL": "/bin/bash"}}
	for k, v := range want {
		if got, _ := json.Marshal(header[k]); string(got) != mustJSON(v) {
			t.Errorf("header %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	var resized, input bool
	var out strings.Builder
	last := -1.0
	for _, ev := range events {
		ts := ev[0].(float64)
		if ts < last {
			t.Errorf("time goes back: %v", ev)
		}
		last = ts
		switch ev[1] {
		case "o":
			out.WriteString(ev[2].(string))
		case "r":
			resized = ev[2] == "100x30"
		case "i":
			input = true
		}
	}
	wantOut := "$ echo \"hi\"\r\nhi\twö 10 €\x1b[0m\x07 done\r\n"
	if out.String() != wantOut || !resized || input {
		t.Fatalf("output %q resized %v input %v", out.String(), resized, input)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("secret-password")) {
		t.Fatal("input recorded although record_input is off")
	}
	if got := asciinemaCat(t, path); got != wantOut {
		t.Fatalf("asciinema cat printed %q, want %q", got, wantOut)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestInputWhenEnabledAndInvalidUTF8(t *testing.T) {
	m, dir := newManager(t, func(c *Config) { c.RecordInput = true })
	r, err := m.Start(Header{Width: 80, Height: 24, Term: "vt100"}, "ff", 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Input([]byte("ls\r"))
	r.Output([]byte("a\xffb\xc0c"))
	r.Output([]byte("tail\xe2\x82")) // never completed: written as U+FFFD at Close
	r.Close()
	_, events := readCast(t, filepath.Join(dir, r.Name()))
	var in, out string
	for _, ev := range events {
		switch ev[1] {
		case "i":
			in += ev[2].(string)
		case "o":
			out += ev[2].(string)
		}
	}
	if in != "ls\r" || out != "a\ufffdb\ufffdctail\ufffd\ufffd" {
		t.Fatalf("in %q out %q", in, out)
	}
}

func TestFileSizeCap(t *testing.T) {
	m, dir := newManager(t, func(c *Config) { c.MaxFileBytes = 4096; c.MaxTotalBytes = 1 << 20 })
	r, err := m.Start(Header{Width: 80, Height: 24}, "aa", 1)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789"), 10)
	for range 100 {
		r.Output(chunk)
	}
	if !r.Capped() {
		t.Fatal("not capped")
	}
	res := r.Close()
	if !res.Capped || res.Err != nil || res.Bytes > 4096 {
		t.Fatalf("result %+v", res)
	}
	path := filepath.Join(dir, r.Name())
	st, _ := os.Stat(path)
	if st.Size() > 4096 || st.Size() != res.Bytes {
		t.Fatalf("size %d", st.Size())
	}
	_, events := readCast(t, path)
	lastEv := events[len(events)-1]
	if lastEv[1] != "m" || !strings.Contains(lastEv[2].(string), "size cap of 4096 bytes") {
		t.Fatalf("last event %v", lastEv)
	}
	out := asciinemaCat(t, path)
	if len(out) < 3000 || !strings.HasPrefix(out, string(chunk)) {
		t.Fatalf("asciinema cat printed %d bytes", len(out))
	}
}

func TestDirectoryCapDeletesOldestFinished(t *testing.T) {
	m, dir := newManager(t, func(c *Config) { c.MaxFileBytes = 4096; c.MaxTotalBytes = 3 * 4096 })
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fill := func(i int) string {
		r, err := m.Start(Header{Width: 80, Height: 24, Start: base.Add(time.Duration(i) * time.Minute)}, "ab", i)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		for range 50 {
			r.Output(bytes.Repeat([]byte("x"), 100))
		}
		r.Close()
		return r.Name()
	}
	// An unrelated file is never touched.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), bytes.Repeat([]byte("n"), 10000), 0o600); err != nil {
		t.Fatal(err)
	}
	names := []string{fill(0), fill(1), fill(2), fill(3)}
	if _, err := os.Stat(filepath.Join(dir, names[0])); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("oldest %s kept: %v", names[0], err)
	}
	// Room for three caps: two finished casts and the one being started.
	for _, n := range append(names[1:], "notes.txt") {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Fatalf("%s deleted: %v", n, err)
		}
	}

	// Recordings in progress are never deleted; when they hold all the room, Start refuses.
	var live []*Recorder
	for i := 10; i < 13; i++ {
		r, err := m.Start(Header{Width: 80, Height: 24, Start: base.Add(time.Hour)}, "cd", i)
		if err != nil {
			t.Fatalf("live %d: %v", i, err)
		}
		live = append(live, r)
	}
	if _, err := m.Start(Header{}, "cd", 99); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("want ErrNoRoom, got %v", err)
	}
	for _, r := range live {
		if _, err := os.Stat(filepath.Join(dir, r.Name())); err != nil {
			t.Fatalf("live recording deleted: %v", err)
		}
		r.Close()
	}
	if _, err := m.Start(Header{}, "cd", 100); err != nil {
		t.Fatalf("after the live ones finished: %v", err)
	}
}

func TestStartRefusesUnsafeNames(t *testing.T) {
	m, _ := newManager(t, nil)
	for _, id := range []string{"", "../x", "ABC", "a/b", strings.Repeat("a", 65)} {
		if _, err := m.Start(Header{}, id, 0); err == nil {
			t.Errorf("session ID %q accepted", id)
		}
	}
	if _, err := m.Start(Header{}, "ab", -1); err == nil {
		t.Error("negative channel accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	c := DefaultConfig()
	c.Enabled, c.Directory, c.MaxFileBytes, c.MaxTotalBytes = true, "rel", 10, 5
	errs := c.Validate()
	if len(errs) != 3 || !strings.HasPrefix(errs[0].Error(), "recording.directory:") ||
		!strings.HasPrefix(errs[1].Error(), "recording.max_file_bytes:") || !strings.HasPrefix(errs[2].Error(), "recording.max_total_bytes:") {
		t.Fatalf("%v", errs)
	}
}

// BenchmarkOutput measures the recording overhead per MiB of terminal output in 4 KiB writes
// (b.SetBytes: the ns/op and MB/s figures are per MiB recorded).
func BenchmarkOutput(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "rec")
	c := DefaultConfig()
	c.Enabled, c.Directory, c.MaxFileBytes, c.MaxTotalBytes = true, dir, 1<<40, 1<<41
	m, err := NewManager(c)
	if err != nil {
		b.Fatal(err)
	}
	r, err := m.Start(Header{Width: 80, Height: 24}, "be", 0)
	if err != nil {
		b.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("ls -la\r\ndrwxr-xr-x 2 vcap vcap 4096 Dec  1 14:30 \x1b[01;34mapp\x1b[0m é\r\n"), 4096/64)[:4096]
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for range (1 << 20) / len(chunk) {
			r.Output(chunk)
		}
	}
	b.StopTimer()
	r.Close()
}
