// Package payload decodes the SSH request payloads the sshd accepts (RFC 4254 sections 6 and 7
// plus OpenSSH's variants), with size limits. Every decoder rejects trailing bytes, truncated
// fields and anything over its limit, so a hostile client cannot make the daemon keep large or
// malformed state.
package payload

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on what a client may send.
const (
	MaxEnvNameLen    = 256
	MaxEnvValueLen   = 32 << 10
	MaxTermLen       = 256
	MaxModesLen      = 4 << 10
	MaxDimension     = 0xFFFF // struct winsize fields are 16 bits
	MaxCommandLen    = 256 << 10
	MaxSignalNameLen = 32
	MaxHostLen       = 1024
	MaxSubsystemLen  = 64
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed request payload")

type reader struct{ b []byte }

func (r *reader) uint32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, fmt.Errorf("%w: truncated uint32", ErrMalformed)
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *reader) bytes(limit int, what string) ([]byte, error) {
	n, err := r.uint32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(limit) {
		return nil, fmt.Errorf("%w: %s longer than %d bytes", ErrMalformed, what, limit)
	}
	if uint64(len(r.b)) < uint64(n) {
		return nil, fmt.Errorf("%w: truncated %s", ErrMalformed, what)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *reader) str(limit int, what string) (string, error) {
	b, err := r.bytes(limit, what)
	return string(b), err
}

func (r *reader) end() error {
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(r.b))
	}
	return nil
}

// Env is an "env" request.
type Env struct{ Name, Value string }

// ParseEnv decodes an "env" request. Names must be non-empty, without '=' or NUL; values
// without NUL (neither can be passed to execve).
func ParseEnv(b []byte) (Env, error) {
	r := reader{b}
	name, err := r.str(MaxEnvNameLen, "variable name")
	if err != nil {
		return Env{}, err
	}
	value, err := r.str(MaxEnvValueLen, "variable value")
	if err != nil {
		return Env{}, err
	}
	if err := r.end(); err != nil {
		return Env{}, err
	}
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return Env{}, fmt.Errorf("%w: invalid variable name", ErrMalformed)
	}
	if strings.ContainsRune(value, 0) {
		return Env{}, fmt.Errorf("%w: NUL in variable value", ErrMalformed)
	}
	return Env{Name: name, Value: value}, nil
}

// Mode is one encoded terminal mode (RFC 4254 section 8).
type Mode struct {
	Opcode byte
	Value  uint32
}

// PtyReq is a "pty-req" request.
type PtyReq struct {
	Term              string
	Cols, Rows        uint32
	WidthPx, HeightPx uint32
	Modes             []Mode
}

// ParsePtyReq decodes a "pty-req" request, including its encoded terminal modes.
func ParsePtyReq(b []byte) (PtyReq, error) {
	r := reader{b}
	var p PtyReq
	var err error
	if p.Term, err = r.str(MaxTermLen, "TERM"); err != nil {
		return PtyReq{}, err
	}
	if strings.ContainsRune(p.Term, 0) {
		return PtyReq{}, fmt.Errorf("%w: NUL in TERM", ErrMalformed)
	}
	if p.Cols, p.Rows, p.WidthPx, p.HeightPx, err = dims(&r); err != nil {
		return PtyReq{}, err
	}
	modes, err := r.bytes(MaxModesLen, "terminal modes")
	if err != nil {
		return PtyReq{}, err
	}
	if err := r.end(); err != nil {
		return PtyReq{}, err
	}
	if p.Modes, err = ParseModes(modes); err != nil {
		return PtyReq{}, err
	}
	return p, nil
}

// ParseModes decodes the encoded terminal modes string: opcode bytes 1..159 each followed by
// a uint32, ending at TTY_OP_END (0) or at the first opcode from 160 on (RFC 4254 says those
// stop processing) or at the end of the string.
func ParseModes(b []byte) ([]Mode, error) {
	var out []Mode
	for len(b) > 0 {
		op := b[0]
		if op == 0 || op >= 160 {
			break
		}
		if len(b) < 5 {
			return nil, fmt.Errorf("%w: truncated terminal mode %d", ErrMalformed, op)
		}
		out = append(out, Mode{Opcode: op, Value: binary.BigEndian.Uint32(b[1:5])})
		b = b[5:]
	}
	return out, nil
}

func dims(r *reader) (cols, rows, wpx, hpx uint32, err error) {
	vals := [4]uint32{}
	for i := range vals {
		if vals[i], err = r.uint32(); err != nil {
			return 0, 0, 0, 0, err
		}
		if vals[i] > MaxDimension {
			return 0, 0, 0, 0, fmt.Errorf("%w: terminal dimension %d too large", ErrMalformed, vals[i])
		}
	}
	return vals[0], vals[1], vals[2], vals[3], nil
}

// WindowChange is a "window-change" request.
type WindowChange struct{ Cols, Rows, WidthPx, HeightPx uint32 }

// ParseWindowChange decodes a "window-change" request.
func ParseWindowChange(b []byte) (WindowChange, error) {
	r := reader{b}
	c, rw, w, h, err := dims(&r)
	if err != nil {
		return WindowChange{}, err
	}
	if err := r.end(); err != nil {
		return WindowChange{}, err
	}
	return WindowChange{Cols: c, Rows: rw, WidthPx: w, HeightPx: h}, nil
}

// ParseExec decodes an "exec" request's command line.
func ParseExec(b []byte) (string, error) {
	r := reader{b}
	cmd, err := r.str(MaxCommandLen, "command")
	if err != nil {
		return "", err
	}
	if err := r.end(); err != nil {
		return "", err
	}
	if strings.ContainsRune(cmd, 0) {
		return "", fmt.Errorf("%w: NUL in command", ErrMalformed)
	}
	return cmd, nil
}

// ParseSubsystem decodes a "subsystem" request's name.
func ParseSubsystem(b []byte) (string, error) {
	r := reader{b}
	name, err := r.str(MaxSubsystemLen, "subsystem name")
	if err != nil {
		return "", err
	}
	return name, r.end()
}

// ParseSignal decodes a "signal" request's signal name (without the "SIG" prefix).
func ParseSignal(b []byte) (string, error) {
	r := reader{b}
	name, err := r.str(MaxSignalNameLen, "signal name")
	if err != nil {
		return "", err
	}
	return name, r.end()
}

// TCPIPForward is a "tcpip-forward" or "cancel-tcpip-forward" global request.
type TCPIPForward struct {
	Address string
	Port    uint32
}

// ParseTCPIPForward decodes a "tcpip-forward" / "cancel-tcpip-forward" payload.
func ParseTCPIPForward(b []byte) (TCPIPForward, error) {
	r := reader{b}
	addr, err := r.str(MaxHostLen, "bind address")
	if err != nil {
		return TCPIPForward{}, err
	}
	port, err := r.uint32()
	if err != nil {
		return TCPIPForward{}, err
	}
	if err := r.end(); err != nil {
		return TCPIPForward{}, err
	}
	if port > 0xFFFF {
		return TCPIPForward{}, fmt.Errorf("%w: port %d out of range", ErrMalformed, port)
	}
	if !validHost(addr) {
		return TCPIPForward{}, fmt.Errorf("%w: invalid bind address", ErrMalformed)
	}
	return TCPIPForward{Address: addr, Port: port}, nil
}

// DirectTCPIP is the extra data of a "direct-tcpip" channel open.
type DirectTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// ParseDirectTCPIP decodes a "direct-tcpip" channel's extra data.
func ParseDirectTCPIP(b []byte) (DirectTCPIP, error) {
	r := reader{b}
	var d DirectTCPIP
	var err error
	if d.Host, err = r.str(MaxHostLen, "host"); err != nil {
		return DirectTCPIP{}, err
	}
	if d.Port, err = r.uint32(); err != nil {
		return DirectTCPIP{}, err
	}
	if d.OriginHost, err = r.str(MaxHostLen, "originator address"); err != nil {
		return DirectTCPIP{}, err
	}
	if d.OriginPort, err = r.uint32(); err != nil {
		return DirectTCPIP{}, err
	}
	if err := r.end(); err != nil {
		return DirectTCPIP{}, err
	}
	if d.Port == 0 || d.Port > 0xFFFF {
		return DirectTCPIP{}, fmt.Errorf("%w: port %d out of range", ErrMalformed, d.Port)
	}
	if d.Host == "" || !validHost(d.Host) {
		return DirectTCPIP{}, fmt.Errorf("%w: invalid host", ErrMalformed)
	}
	return d, nil
}

func validHost(h string) bool {
	if !utf8.ValidString(h) {
		return false
	}
	for _, c := range h {
		if c <= ' ' || c == 0x7f || c == '/' {
			return false
		}
	}
	return true
}

// String encodes s as an SSH string (uint32 length + bytes).
func String(s string) []byte {
	out := make([]byte, 4+len(s))
	binary.BigEndian.PutUint32(out, uint32(len(s)))
	copy(out[4:], s)
	return out
}

// Uint32 encodes v big-endian.
func Uint32(v uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, v)
}

// ExitStatus encodes an "exit-status" request payload.
func ExitStatus(code uint32) []byte { return Uint32(code) }

// ExitSignal encodes an "exit-signal" request payload.
func ExitSignal(name string, coreDumped bool, message string) []byte {
	var out []byte
	out = append(out, String(name)...)
	if coreDumped {
		out = append(out, 1)
	} else {
		out = append(out, 0)
	}
	out = append(out, String(message)...)
	out = append(out, String("")...)
	return out
}

// ForwardedTCPIP encodes the extra data of a "forwarded-tcpip" channel open.
func ForwardedTCPIP(boundAddr string, boundPort uint32, originHost string, originPort uint32) []byte {
	var out []byte
	out = append(out, String(boundAddr)...)
	out = append(out, Uint32(boundPort)...)
	out = append(out, String(originHost)...)
	out = append(out, Uint32(originPort)...)
	return out
}
