package scp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/scp"
	"github.com/app-ssh/app-ssh/internal/testenv/logbuf"
)

// peerTimeout bounds every conversation: after it the pipes are closed, so
// no read or write in a spec can block for ever.
const peerTimeout = 30 * time.Second

// peer is the other end of an scp conversation, written independently of
// the package under test: it plays the OpenSSH client's part.
type peer struct {
	w        io.WriteCloser
	r        *bufio.Reader
	stderr   *logbuf.Buffer
	finished chan struct{}
	code     int
	cancel   context.CancelFunc
	messages []string // error messages received while downloading
}

// startRun runs cmdline through Parse and Run in this process.
func startRun(cmdline, workDir string) *peer {
	cmd, err := scp.Parse(cmdline)
	Expect(err).NotTo(HaveOccurred())
	return startCommand(cmd, workDir)
}

func startCommand(cmd *scp.Command, workDir string) *peer {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &peer{
		w:        inW,
		r:        bufio.NewReader(outR),
		stderr:   &logbuf.Buffer{},
		finished: make(chan struct{}),
		cancel:   cancel,
	}
	go func() {
		defer close(p.finished)
		p.code = cmd.Run(ctx, inR, outW, p.stderr, workDir)
		_ = outW.Close()
		_ = inR.Close()
	}()
	guard := time.AfterFunc(peerTimeout, func() {
		_ = inW.CloseWithError(errors.New("peer timeout"))
		_ = outR.CloseWithError(errors.New("peer timeout"))
	})
	DeferCleanup(func() {
		guard.Stop()
		cancel()
		_ = inW.Close()
		_ = outR.Close()
		Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
	})
	return p
}

// startProcess runs the scpserve helper as uid/gid 65534 (nobody), for
// permission checks that root would bypass.
func startProcess(cmdline, workDir string) *peer {
	cmd := exec.Command(serveBin, cmdline)
	cmd.Env = []string{"SCPSERVE_WORKDIR=" + workDir, "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	inR, inW, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	outR, outW, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	p := &peer{w: inW, r: bufio.NewReader(outR), stderr: &logbuf.Buffer{}, finished: make(chan struct{}), cancel: func() {}}
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = p.stderr
	startErr := cmd.Start()
	_ = inR.Close()
	_ = outW.Close()
	Expect(startErr).NotTo(HaveOccurred())
	go func() {
		defer close(p.finished)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			p.code = 0
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		default:
			p.code = -1
		}
	}()
	guard := time.AfterFunc(peerTimeout, func() { _ = cmd.Process.Kill() })
	DeferCleanup(func() {
		guard.Stop()
		_ = inW.Close()
		Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
		_ = outR.Close()
	})
	return p
}

func (p *peer) send(s string) {
	_, err := io.WriteString(p.w, s)
	Expect(err).NotTo(HaveOccurred())
}

// reply reads one reply: 0, or 1/2 followed by a message line.
func (p *peer) reply() (byte, string) {
	b, err := p.r.ReadByte()
	Expect(err).NotTo(HaveOccurred(), "reading a reply")
	if b == 0 {
		return 0, ""
	}
	msg, err := p.r.ReadString('\n')
	Expect(err).NotTo(HaveOccurred(), "reading a reply message")
	return b, strings.TrimSuffix(msg, "\n")
}

func (p *peer) expectOK() {
	b, msg := p.reply()
	ExpectWithOffset(1, b).To(BeZero(), "peer expected an ack, got %q", msg)
}

// expectReply expects an error reply of the given kind containing substr.
func (p *peer) expectReply(kind byte, substr string) {
	b, msg := p.reply()
	ExpectWithOffset(1, b).To(Equal(kind), "reply %q", msg)
	ExpectWithOffset(1, msg).To(ContainSubstring(substr))
}

func (p *peer) readLine() string {
	line, err := p.r.ReadString('\n')
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return line
}

// finish closes our side and returns Run's exit status and anything it
// still sent.
func (p *peer) finish() (int, string) {
	_ = p.w.Close()
	rest, _ := io.ReadAll(p.r)
	Eventually(p.finished).WithTimeout(10 * time.Second).Should(BeClosed())
	return p.code, string(rest)
}

// upload sends a local file or tree the way the OpenSSH client does.
func (p *peer) upload(local string, preserve bool) {
	st, err := os.Stat(local)
	Expect(err).NotTo(HaveOccurred())
	if preserve {
		p.send(fmt.Sprintf("T%d 0 %d 0\n", st.ModTime().Unix(), st.ModTime().Unix()))
		p.expectOK()
	}
	if st.IsDir() {
		p.send(fmt.Sprintf("D%04o 0 %s\n", st.Mode().Perm(), filepath.Base(local)))
		p.expectOK()
		entries, err := os.ReadDir(local)
		Expect(err).NotTo(HaveOccurred())
		for _, e := range entries {
			p.upload(filepath.Join(local, e.Name()), preserve)
		}
		p.send("E\n")
		p.expectOK()
		return
	}
	data, err := os.ReadFile(local)
	Expect(err).NotTo(HaveOccurred())
	p.send(fmt.Sprintf("C%04o %d %s\n", st.Mode().Perm(), len(data), filepath.Base(local)))
	p.expectOK()
	_, err = p.w.Write(data)
	Expect(err).NotTo(HaveOccurred())
	p.send("\x00")
	p.expectOK()
}

type pendingDir struct {
	path  string
	mode  os.FileMode
	times *[2]int64
}

// download receives everything the source sends into dir (which must
// exist), applying modes and times like "scp -rp" does.
func (p *peer) download(dir string) {
	p.send("\x00")
	stack := []pendingDir{{path: dir}}
	var times *[2]int64
	for {
		kind, err := p.r.ReadByte()
		if err == io.EOF {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		line, err := p.r.ReadString('\n')
		Expect(err).NotTo(HaveOccurred())
		line = strings.TrimSuffix(line, "\n")
		cur := stack[len(stack)-1].path
		switch kind {
		case 1, 2:
			p.messages = append(p.messages, line)
			if kind == 2 {
				return
			}
		case 'T':
			var m, mu, a, au int64
			_, err := fmt.Sscanf(line, "%d %d %d %d", &m, &mu, &a, &au)
			Expect(err).NotTo(HaveOccurred(), line)
			times = &[2]int64{m, a}
			p.send("\x00")
		case 'C', 'D':
			mode, err := strconv.ParseUint(line[:4], 8, 32)
			Expect(err).NotTo(HaveOccurred(), line)
			fields := strings.SplitN(line[5:], " ", 2)
			Expect(fields).To(HaveLen(2), line)
			size, err := strconv.ParseInt(fields[0], 10, 64)
			Expect(err).NotTo(HaveOccurred(), line)
			name := fields[1]
			Expect(name).NotTo(Or(BeEmpty(), Equal("."), Equal(".."), ContainSubstring("/")))
			target := filepath.Join(cur, name)
			if kind == 'D' {
				Expect(os.Mkdir(target, 0o700)).To(Succeed())
				stack = append(stack, pendingDir{target, os.FileMode(mode), times})
				times = nil
				p.send("\x00")
				continue
			}
			p.send("\x00")
			data := make([]byte, size)
			_, err = io.ReadFull(p.r, data)
			Expect(err).NotTo(HaveOccurred())
			end, err := p.r.ReadByte()
			Expect(err).NotTo(HaveOccurred())
			if end != 0 {
				msg, _ := p.r.ReadString('\n')
				p.messages = append(p.messages, msg)
			}
			Expect(os.WriteFile(target, data, 0o600)).To(Succeed())
			Expect(os.Chmod(target, os.FileMode(mode))).To(Succeed())
			if times != nil {
				Expect(os.Chtimes(target, time.Unix(times[1], 0), time.Unix(times[0], 0))).To(Succeed())
				times = nil
			}
			p.send("\x00")
		case 'E':
			Expect(len(stack)).To(BeNumerically(">", 1), "E outside a directory")
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			Expect(os.Chmod(d.path, d.mode)).To(Succeed())
			if d.times != nil {
				Expect(os.Chtimes(d.path, time.Unix(d.times[1], 0), time.Unix(d.times[0], 0))).To(Succeed())
			}
			p.send("\x00")
		default:
			Fail(fmt.Sprintf("unexpected record %q", string(kind)+line))
		}
	}
	Expect(stack).To(HaveLen(1), "stream ended inside a directory")
}

// entry describes one node of a tree for comparisons.
type entry struct {
	Mode  os.FileMode
	MTime int64
	Data  string
}

// snapshot records every node under root (root itself excluded) with its
// mode, mtime (if withTimes) and content hash.
func snapshot(root string, withTimes bool) map[string]entry {
	out := map[string]entry{}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "." {
			return nil
		}
		e := entry{Mode: info.Mode()}
		if withTimes {
			e.MTime = info.ModTime().Unix()
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			e.Data = fmt.Sprintf("%d:%x", len(data), sum(data))
		}
		out[rel] = e
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	return out
}

func sum(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// makeTree builds a tree with assorted modes, sizes and old mtimes.
func makeTree(root string) {
	rng := rand.New(rand.NewSource(7))
	big := make([]byte, 3<<20+12345)
	rng.Read(big)
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"top.txt", 0o644, []byte("hello\n")},
		{"run.sh", 0o751, []byte("#!/bin/sh\necho hi\n")},
		{"empty", 0o600, nil},
		{"big.bin", 0o640, big},
		{"name with space", 0o604, []byte("spaced")},
		{"sub/inner.txt", 0o400, []byte("inner")},
		{"sub/deeper/leaf", 0o660, []byte("leaf")},
		{"ro/x", 0o644, []byte("in a read-only dir")},
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"sub/deeper", 0o700}, {"sub", 0o750}, {"ro", 0o555}, {"emptydir", 0o711},
	}
	for _, d := range dirs {
		Expect(os.MkdirAll(filepath.Join(root, d.path), 0o755)).To(Succeed())
	}
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for i, f := range files {
		p := filepath.Join(root, f.path)
		Expect(os.WriteFile(p, f.data, 0o600)).To(Succeed())
		Expect(os.Chmod(p, f.mode)).To(Succeed())
		t := base.Add(time.Duration(i) * time.Hour)
		Expect(os.Chtimes(p, t, t)).To(Succeed())
	}
	for i, d := range dirs {
		p := filepath.Join(root, d.path)
		Expect(os.Chmod(p, d.mode)).To(Succeed())
		t := base.Add(time.Duration(100+i) * time.Hour)
		Expect(os.Chtimes(p, t, t)).To(Succeed())
	}
	t := base.Add(200 * time.Hour)
	Expect(os.Chtimes(root, t, t)).To(Succeed())
}

// listAll lists every path under root, sorted, for "nothing else written"
// checks.
func listAll(root string) []string {
	var out []string
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out = append(out, rel)
		return nil
	})
	Expect(err).NotTo(HaveOccurred())
	sort.Strings(out)
	return out
}

// chmodAllWritable makes a tree removable again.
func chmodAllWritable(root string) {
	_ = filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			_ = os.Chmod(path, 0o755)
		}
		return nil
	})
}

// tempDir returns a fresh directory that is removed after the spec even if
// the spec left unwritable directories in it.
func tempDir() string {
	d, err := os.MkdirTemp("", "scp-spec-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		chmodAllWritable(d)
		Expect(os.RemoveAll(d)).To(Succeed())
	})
	return d
}

// expectRaw reads exactly len(want) bytes and compares them.
func (p *peer) expectRaw(want string) {
	got := make([]byte, len(want))
	_, err := io.ReadFull(p.r, got)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, string(got)).To(Equal(want))
}
