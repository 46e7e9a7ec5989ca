// Package sshident checks the identification line an SSH client sends first (RFC 4253 4.2) the
// way OpenSSH's sshd does, for both app-ssh servers: a line that is not an SSH-2.0 (or SSH-1.99)
// identification gets a one-line reason ("Protocol major versions differ." or "Invalid SSH
// identification string.") written back before the connection is closed, instead of a silent
// reset or a handshake that waits for its timeout.
//
// golang.org/x/crypto/ssh writes the server's own identification before it reads the client's,
// so the order on the wire is OpenSSH's: our version line, then the reason.
package sshident

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/app-ssh/app-ssh/internal/logging"
)

// The reasons sent to the client, in OpenSSH's words.
const (
	ReasonVersion = "Protocol major versions differ."
	ReasonInvalid = "Invalid SSH identification string."
)

// maxLine is the longest identification line RFC 4253 allows, CR LF included.
const maxLine = 255

// maxLogged is how much of a refused line an Error keeps: enough to recognise the client.
const maxLogged = 64

// Error is a refused identification line; Reason is what the client was told.
type Error struct {
	Reason string
	Line   string // what the client sent (capped, for logs)
}

func (e *Error) Error() string {
	return fmt.Sprintf("client identification refused (%s): %q", e.Reason, e.Line)
}

// Wrap returns c with its first line checked as a client's identification. The caller hands the
// result to ssh.NewServerConn; a refused line makes its handshake fail with an *Error after the
// reason was written to the client (errors.As finds it in the handshake error).
func Wrap(c net.Conn) net.Conn { return &conn{Conn: c} }

type conn struct {
	net.Conn
	checked bool   // the first line passed: reads go straight through
	line    []byte // the first line so far
	err     error  // the refusal, returned by every later read
}

func (c *conn) Read(b []byte) (int, error) {
	if c.checked {
		return c.Conn.Read(b)
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(b)
	for i := 0; i < n && !c.checked; i++ {
		c.line = append(c.line, b[i])
		reason, done := judge(c.line)
		if reason != "" {
			// Best effort, under the deadline the caller set for the handshake.
			_, _ = c.Conn.Write([]byte(reason + "\r\n"))
			c.err = &Error{Reason: reason, Line: logging.CapAt(string(bytes.TrimRight(c.line, "\r\n")), maxLogged)}
			c.line = nil
			return 0, c.err
		}
		if done {
			c.checked, c.line = true, nil
		}
	}
	return n, err
}

// judge looks at the first line as received so far: a reason to refuse it, or done once it
// is complete and acceptable. Like OpenSSH's sshd it waits for the end of the line (or the
// most RFC 4253 allows) before deciding, so that nothing the client sent is left unread when
// the connection closes (which would turn the close into a reset that can destroy the reason).
func judge(line []byte) (reason string, done bool) {
	if line[len(line)-1] != '\n' {
		if len(line) >= maxLine {
			return ReasonInvalid, false
		}
		return "", false
	}
	if !bytes.HasPrefix(line, []byte("SSH-")) {
		// OpenSSH's sshd, unlike a client, accepts no other line before the identification.
		return ReasonInvalid, false
	}
	major, minor, ok := parse(bytes.TrimRight(line, "\r\n"))
	switch {
	case !ok:
		return ReasonInvalid, false
	case major == 2, major == 1 && minor == 99:
		return "", true
	}
	return ReasonVersion, false
}

// parse reads "SSH-<major>.<minor>-<softwareversion>[ <comments>]" as OpenSSH does: both
// numbers and a non-empty software version are required.
func parse(line []byte) (major, minor int, ok bool) {
	rest := line[len("SSH-"):]
	protocol, software, found := bytes.Cut(rest, []byte("-"))
	if !found || len(software) == 0 {
		return 0, 0, false
	}
	ma, mi, found := bytes.Cut(protocol, []byte("."))
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(string(ma))
	minor, err2 = strconv.Atoi(string(mi))
	if err := errors.Join(err1, err2); err != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}
