package scp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// maxLine bounds one protocol line (a record or an error message),
	// newline included. OpenSSH uses a 2 KiB buffer for the same purpose.
	maxLine = 2048
	// maxDepth bounds directory nesting in both directions.
	maxDepth = 256
	// maxPath bounds the length of a path built while sending a tree.
	maxPath = 4096
	// ioBufSize is the size of the protocol stream buffers.
	ioBufSize = 64 << 10
	// chunkSize is the size of one file data transfer.
	chunkSize = 256 << 10
	// fileModeMask is the set of mode bits the protocol carries.
	fileModeMask = 0o6777
)

// errFatal marks an error after which the session cannot go on; the peer has
// already been told (or the stream is gone).
var errFatal = errors.New("scp: fatal protocol error")

// errSkipped means the peer answered with a warning: the current item is
// skipped, the session goes on.
var errSkipped = errors.New("scp: item refused by peer")

type session struct {
	ctx     context.Context
	cmd     *Command
	in      *bufio.Reader
	out     *bufio.Writer
	stderr  io.Writer
	workDir string
	errs    int
	chunk   []byte
}

// Run serves the protocol on stdin/stdout (stderr only carries -v
// diagnostics). Relative paths resolve against workDir; "~" and "~/x" resolve
// to workDir too. It returns the exit status: 0 when everything was
// transferred, 1 after any error; errors are reported to the peer as OpenSSH
// does (\x01 + message for a failed item, \x02 + message for a fatal one).
//
// If ctx is cancelled while Run is blocked on the stream, Run unblocks itself
// by setting an immediate read/write deadline on stdin/stdout when they
// support it, or else by closing them when they are io.Closers; it returns 1.
// No goroutine outlives Run.
func (c *Command) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, workDir string) int {
	if c == nil || stdin == nil || stdout == nil {
		return 1
	}
	if stderr == nil {
		stderr = io.Discard
	}
	if ctx.Err() != nil {
		return 1
	}
	s := &session{
		ctx:     ctx,
		cmd:     c,
		in:      bufio.NewReaderSize(stdin, ioBufSize),
		out:     bufio.NewWriterSize(stdout, ioBufSize),
		stderr:  stderr,
		workDir: workDir,
	}

	var interrupted sync.WaitGroup
	interrupted.Add(1)
	stop := context.AfterFunc(ctx, func() {
		defer interrupted.Done()
		unblock(stdin, stdout)
	})
	defer func() {
		if !stop() {
			interrupted.Wait()
		}
	}()

	var err error
	switch {
	case c.Sink && !c.Source:
		err = s.serveSink()
	case c.Source && !c.Sink:
		err = s.serveSource()
	default:
		s.fatal("protocol error: neither -t nor -f")
		err = errFatal
	}
	if ferr := s.out.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil || s.errs > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// unblock makes blocked I/O on the stream return.
func unblock(stdin io.Reader, stdout io.Writer) {
	past := time.Unix(1, 0)
	if d, ok := stdin.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(past) == nil {
		// deadline set
	} else if cl, ok := stdin.(io.Closer); ok {
		_ = cl.Close()
	}
	if d, ok := stdout.(interface{ SetWriteDeadline(time.Time) error }); ok && d.SetWriteDeadline(past) == nil {
		return
	}
	if cl, ok := stdout.(io.Closer); ok {
		_ = cl.Close()
	}
}

// resolve maps an operand to a local path.
func (s *session) resolve(p string) string {
	switch {
	case p == "~":
		p = "."
	case strings.HasPrefix(p, "~/"):
		p = "." + p[1:]
	}
	if filepath.IsAbs(p) || s.workDir == "" {
		return filepath.Clean(p)
	}
	return filepath.Join(s.workDir, p)
}

// verbosef writes a -v diagnostic line.
func (s *session) verbosef(format string, args ...any) {
	if s.cmd.Verbose {
		fmt.Fprintf(s.stderr, format+"\n", args...)
	}
}

// warn reports a failed item to the peer (\x01) and counts it.
func (s *session) warn(format string, args ...any) {
	s.errs++
	s.sendMessage(1, fmt.Sprintf(format, args...))
}

// fatal reports a fatal error to the peer (\x02) and counts it.
func (s *session) fatal(format string, args ...any) {
	s.errs++
	s.sendMessage(2, fmt.Sprintf(format, args...))
}

func (s *session) sendMessage(kind byte, msg string) {
	line := "scp: " + sanitize(msg)
	if len(line) > maxLine-2 {
		line = line[:maxLine-2]
	}
	s.verbosef("%s", line)
	_ = s.out.WriteByte(kind)
	_, _ = s.out.WriteString(line)
	_ = s.out.WriteByte('\n')
	_ = s.out.Flush()
}

// ack sends the one-byte "ok" reply.
func (s *session) ack() error {
	if err := s.out.WriteByte(0); err != nil {
		return err
	}
	return s.out.Flush()
}

// response reads the peer's reply to what we sent: nil for ok, errSkipped
// for a warning, errFatal for a fatal error or a lost stream.
func (s *session) response() error {
	if err := s.out.Flush(); err != nil {
		s.errs++
		return errFatal
	}
	b, err := s.in.ReadByte()
	if err != nil {
		s.errs++
		return errFatal
	}
	if b == 0 {
		return nil
	}
	// Anything else is followed by a message line.
	msg, err := s.readLine()
	s.errs++
	if err != nil {
		return errFatal
	}
	s.verbosef("peer: %s", strings.TrimSuffix(msg, "\n"))
	if b == 1 {
		return errSkipped
	}
	return errFatal
}

// readLine reads up to and including '\n', at most maxLine bytes.
func (s *session) readLine() (string, error) {
	var b strings.Builder
	for b.Len() < maxLine {
		if err := s.ctx.Err(); err != nil {
			return "", err
		}
		c, err := s.in.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		b.WriteByte(c)
		if c == '\n' {
			return b.String(), nil
		}
	}
	return "", errLineTooLong
}

// sanitize replaces control characters so a name cannot break a protocol
// line or a terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

var errLineTooLong = errors.New("line too long")

// errText renders an error like strerror(3) does, for messages to the peer.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		t := errno.Error()
		if t != "" {
			return strings.ToUpper(t[:1]) + t[1:]
		}
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// unixMode converts an os.FileMode to the protocol's mode bits.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	return u & fileModeMask
}

// goMode converts protocol mode bits to an os.FileMode.
func goMode(u uint32) os.FileMode {
	m := os.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	return m
}
