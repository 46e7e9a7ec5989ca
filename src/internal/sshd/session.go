package sshd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/sftpfs"
	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

// Per-session limits on client-supplied environment.
const (
	maxEnvVars  = 256
	maxEnvBytes = 64 << 10
)

// sftpReadBuf batches the many small reads the sftp server makes (length, then body).
const sftpReadBuf = 256 << 10

// hangupGrace is how long a session's main process may outlive a SIGHUP before SIGKILL.
const hangupGrace = 10 * time.Second

// ptyDrainGrace bounds how long output of a pty session is drained after its process exited
// (background jobs may keep the terminal open forever).
const ptyDrainGrace = time.Second

type session struct {
	c      *conn
	ch     ssh.Channel
	log    *slog.Logger
	ctx    context.Context // ends when the channel's request stream ends
	cancel context.CancelFunc

	env      *envList // client "env" requests
	envBytes int
	pty      *payload.PtyReq

	mu       sync.Mutex
	started  bool
	proc     *os.Process
	master   *os.File // pty master while the process runs
	finished chan struct{}
	// replied is closed once the request that started the program has been answered: the
	// program's exit status and the channel close wait for it. A reply sent after the close is
	// dropped (x/crypto/ssh writes nothing on a closed channel), and a client still waiting for
	// it sees its exec fail ("exec request failed on channel 0" through ssh-proxy, EOF for
	// x/crypto/ssh clients) although the command ran.
	replied chan struct{}
}

// testHookBeforeReply, when set (tests only), runs after a request was handled and before it
// is answered.
var testHookBeforeReply func(s *session, req *ssh.Request)

func (c *conn) runSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	ctx, cancel := context.WithCancel(c.ctx)
	s := &session{c: c, ch: ch, log: c.log, ctx: ctx, cancel: cancel, env: newEnvList(),
		finished: make(chan struct{}), replied: make(chan struct{})}
	answeredStart := false
	for req := range reqs {
		c.act.touch()
		ok := s.handle(req)
		if testHookBeforeReply != nil {
			testHookBeforeReply(s, req)
		}
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if !answeredStart {
			s.mu.Lock()
			answeredStart = s.started
			s.mu.Unlock()
			if answeredStart {
				close(s.replied)
			}
		}
	}
	// The client closed the channel, or the connection is gone.
	s.terminate()
	cancel()
	ch.Close()
}

func (s *session) handle(req *ssh.Request) bool {
	switch req.Type {
	case "env":
		e, err := payload.ParseEnv(req.Payload)
		if err != nil {
			s.log.Info("env-refused", "error", err.Error())
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.started {
			return false
		}
		if _, exists := s.env.vals[e.Name]; !exists && len(s.env.keys) >= maxEnvVars {
			return false
		}
		size := len(e.Name) + len(e.Value) + 2
		if s.envBytes+size > maxEnvBytes {
			return false
		}
		s.envBytes += size
		s.env.set(e.Name, e.Value)
		s.log.Debug("env-accepted", "name", logging.Cap(e.Name))
		return true
	case "pty-req":
		p, err := payload.ParsePtyReq(req.Payload)
		if err != nil {
			s.log.Info("pty-req-refused", "error", err.Error())
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.started || s.pty != nil {
			return false
		}
		s.pty = &p
		return true
	case "window-change":
		w, err := payload.ParseWindowChange(req.Payload)
		if err != nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pty == nil {
			return false
		}
		s.pty.Cols, s.pty.Rows, s.pty.WidthPx, s.pty.HeightPx = w.Cols, w.Rows, w.WidthPx, w.HeightPx
		if s.master != nil {
			return setWinsize(s.master, w.Cols, w.Rows, w.WidthPx, w.HeightPx) == nil
		}
		return true
	case "signal":
		name, err := payload.ParseSignal(req.Payload)
		if err != nil {
			return false
		}
		sig, ok := signalByName(name)
		if !ok {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.proc == nil {
			return false
		}
		s.log.Debug("signal", "signal", name)
		return s.proc.Signal(sig) == nil
	case "shell":
		if len(req.Payload) != 0 {
			return false
		}
		return s.start("shell", "")
	case "exec":
		cmd, err := payload.ParseExec(req.Payload)
		if err != nil {
			s.log.Info("exec-refused", "error", err.Error())
			return false
		}
		return s.start("exec", cmd)
	case "subsystem":
		name, err := payload.ParseSubsystem(req.Payload)
		if err != nil || name != "sftp" {
			s.log.Info("subsystem-refused", "subsystem", logging.Cap(name))
			return false
		}
		return s.start("sftp", "")
	}
	return false
}

// start launches the session's program once.
func (s *session) start(kind, cmdline string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return false
	}
	var err error
	switch {
	case kind == "sftp":
		err = s.startSFTP()
	case kind == "exec" && s.c.srv.opts.Builtin != nil:
		if run, ok := s.c.srv.opts.Builtin(cmdline); ok {
			s.log.Info("builtin-started")
			s.startBuiltin(run)
			break
		}
		err = s.startProcess(kind, cmdline)
	default:
		err = s.startProcess(kind, cmdline)
	}
	var ee *execError
	if errors.As(err, &ee) {
		// As OpenSSH's sshd, whose session child reports a failed execve with perror and
		// exit status 1: the request succeeds and the client learns why on stderr.
		s.log.Info("exec-failed", "kind", kind, "error", ee.Error())
		s.startExecFailure(ee)
		err = nil
	}
	if err != nil {
		s.log.Error("start-failed", "kind", kind, "error", err.Error())
		return false
	}
	s.started = true
	return true
}

// execError is a program that could not be executed (execve failed: E2BIG for a command line
// over the kernel's limit, ENOENT, EACCES...).
type execError struct {
	shell string
	err   error
}

func (e *execError) Error() string {
	var errno syscall.Errno
	if errors.As(e.err, &errno) {
		return e.shell + ": " + strerror(errno)
	}
	return e.shell + ": " + e.err.Error()
}

// startExecFailure ends the session as a program that failed to execute: the reason on stderr,
// exit status 1.
func (s *session) startExecFailure(ee *execError) {
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		defer close(s.finished)
		_, _ = io.WriteString(s.ch.Stderr(), ee.Error()+"\n")
		s.finish(payload.ExitStatus(1), "exit-status")
	}()
}

func (s *session) ioReader() io.Reader { return activeReader{r: s.ch, act: s.c.act} }
func (s *session) ioWriter() io.Writer { return activeWriter{w: s.ch, act: s.c.act} }

func (s *session) startBuiltin(run BuiltinRunner) {
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		defer close(s.finished)
		code := run(s.ctx, s.ioReader(), s.ioWriter(), s.ch.Stderr(), s.c.srv.homeDir)
		s.finish(payload.ExitStatus(uint32(code)), "exit-status")
	}()
}

func (s *session) startSFTP() error {
	rwc := struct {
		io.Reader
		io.Writer
		io.Closer
	}{bufio.NewReaderSize(s.ioReader(), sftpReadBuf), s.ioWriter(), nopCloser{}} // the session closes the channel after exit-status
	srv := sftpfs.NewServer(rwc, s.c.srv.homeDir)
	s.log.Info("sftp-started")
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		defer close(s.finished)
		stop := context.AfterFunc(s.ctx, func() { s.ch.Close() })
		defer stop()
		err := srv.Serve()
		srv.Close()
		code := uint32(0)
		// The client's EOF ends the subsystem normally, open handles or not (as sftp-server).
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			code = 1
		}
		s.finish(payload.ExitStatus(code), "exit-status")
	}()
	return nil
}

// environ is the process environment: the server's base, TERM for a pty, the client's env.
func (s *session) environ() []string {
	env := newEnvList()
	for _, kv := range s.c.srv.baseEnv {
		k, v, _ := cut(kv)
		env.set(k, v)
	}
	if s.pty != nil {
		term := s.pty.Term
		if term == "" {
			term = "xterm"
		}
		env.set("TERM", term)
	}
	for _, k := range s.env.keys {
		if k != "HOME" && k != "USER" { // the daemon's identity, as with diego-sshd
			env.set(k, s.env.vals[k])
		}
	}
	return env.list()
}

func cut(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func (s *session) command(kind, cmdline string) *exec.Cmd {
	shell := s.c.srv.shell
	var cmd *exec.Cmd
	if kind == "shell" {
		cmd = exec.Command(shell)
		cmd.Args = []string{"-" + baseName(shell)} // a login shell, like sshd starts
	} else {
		cmd = exec.Command(shell, "-c", cmdline)
	}
	cmd.Env = s.environ()
	cmd.Dir = s.c.srv.homeDir
	return cmd
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func (s *session) startProcess(kind, cmdline string) error {
	cmd := s.command(kind, cmdline)
	if s.pty != nil {
		return s.startPTY(cmd)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return err
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		closeAll(stdinR, stdinW)
		return err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		closeAll(stdinR, stdinW, stdoutR, stdoutW)
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	if err := cmd.Start(); err != nil {
		closeAll(stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW)
		return &execError{shell: cmd.Path, err: err}
	}
	closeAll(stdinR, stdoutW, stderrW)
	s.proc = cmd.Process
	s.log.Info("process-started", "kind", kind, "pid", cmd.Process.Pid, "pty", false)

	// stdin: until the client's EOF or the channel closes.
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		_, _ = copyBuf(stdinW, s.ioReader())
		stdinW.Close()
	}()
	var out sync.WaitGroup
	out.Add(2)
	s.c.wg.Add(2)
	go func() {
		defer s.c.wg.Done()
		defer out.Done()
		_, _ = copyBuf(s.ioWriter(), stdoutR)
	}()
	go func() {
		defer s.c.wg.Done()
		defer out.Done()
		_, _ = copyBuf(activeWriter{w: s.ch.Stderr(), act: s.c.act}, stderrR)
	}()
	outDone := make(chan struct{})
	s.c.wg.Add(2)
	go func() { defer s.c.wg.Done(); out.Wait(); close(outDone) }()
	go func() {
		defer s.c.wg.Done()
		defer close(s.finished)
		_ = cmd.Wait()
		s.mu.Lock()
		s.proc = nil
		s.mu.Unlock()
		// Everything the process (and children still holding its pipes) writes reaches the
		// client before the exit status, as with OpenSSH; a closed session stops waiting.
		select {
		case <-outDone:
		case <-s.ctx.Done():
		}
		closeAll(stdoutR, stderrR)
		<-outDone
		s.finishProcess(cmd.ProcessState)
	}()
	return nil
}

func (s *session) startPTY(cmd *exec.Cmd) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	master, err := pollable(ptmx)
	if err != nil {
		closeAll(ptmx, tty)
		return err
	}
	p := s.pty
	if err := setWinsize(master, p.Cols, p.Rows, p.WidthPx, p.HeightPx); err != nil {
		closeAll(master, tty)
		return err
	}
	if err := applyModes(tty, p.Modes); err != nil {
		s.log.Info("terminal-modes-not-applied", "error", err.Error())
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		closeAll(master, tty)
		return &execError{shell: cmd.Path, err: err}
	}
	tty.Close()
	s.proc = cmd.Process
	s.master = master
	s.log.Info("process-started", "pid", cmd.Process.Pid, "pty", true)

	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		// A pty has no half-close: the client's EOF just ends the input copy.
		_, _ = copyBuf(master, s.ioReader())
	}()
	outDone := make(chan struct{})
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		defer close(outDone)
		_, _ = copyBuf(s.ioWriter(), master) // ends with EIO once no process holds the terminal
	}()
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		defer close(s.finished)
		_ = cmd.Wait()
		s.mu.Lock()
		s.proc = nil
		s.mu.Unlock()
		t := time.NewTimer(ptyDrainGrace)
		select {
		case <-outDone:
		case <-t.C:
		case <-s.ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
		s.master = nil
		s.mu.Unlock()
		master.Close()
		<-outDone
		s.finishProcess(cmd.ProcessState)
	}()
	return nil
}

// finishProcess reports how the process ended and closes the channel.
func (s *session) finishProcess(ps *os.ProcessState) {
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		name := signalName(ws.Signal())
		s.log.Info("process-exited", "signal", name, "core_dumped", ws.CoreDump())
		s.finish(payload.ExitSignal(name, ws.CoreDump(), ""), "exit-signal")
		return
	}
	s.log.Info("process-exited", "exit_status", ws.ExitStatus())
	s.finish(payload.ExitStatus(uint32(ws.ExitStatus())), "exit-status")
}

// finish sends the exit status and closes the channel, after the request that started the
// program has been answered (the request loop does that right after start returns, so this
// wait is short).
func (s *session) finish(msg []byte, kind string) {
	<-s.replied
	_, _ = s.ch.SendRequest(kind, false, msg)
	_ = s.ch.CloseWrite()
	_ = s.ch.Close()
}

// terminate ends whatever the session still runs: SIGHUP to the process group (as a hung-up
// terminal would), SIGKILL to the main process if it outlives hangupGrace.
func (s *session) terminate() {
	s.mu.Lock()
	started, proc := s.started, s.proc
	s.mu.Unlock()
	if !started {
		return
	}
	if proc != nil {
		_ = syscall.Kill(-proc.Pid, syscall.SIGHUP)
	}
	s.cancel()
	t := time.NewTimer(hangupGrace)
	defer t.Stop()
	select {
	case <-s.finished:
		return
	case <-t.C:
	}
	s.mu.Lock()
	proc = s.proc
	s.mu.Unlock()
	if proc != nil {
		_ = proc.Kill()
	}
	<-s.finished
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
