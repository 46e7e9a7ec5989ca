// Package recording writes interactive pty sessions as asciicast v2 files
// (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line, then one JSON array
// per event: [seconds, "o", output], [seconds, "r", "COLSxROWS"] on resize, [seconds, "i",
// input] only when input recording is on (off by default: typed passwords would be kept), and
// a final [seconds, "m", note] marker when the file reaches its size cap.
//
// Recording never holds up or ends a session: a full file or a failed write stops the
// recording, the session goes on, and Close reports what happened for the audit log.
package recording

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Header is what the asciicast header records.
type Header struct {
	Width, Height int
	Start         time.Time // "timestamp"; zero = now
	Term          string    // env.TERM (from the pty request)
	Shell         string    // env.SHELL, when known
}

// Result is what a closed recording amounts to.
type Result struct {
	File  string // base name in the recording directory
	Bytes int64  // file size
	// Capped is set when the size cap stopped the recording (the session went on).
	Capped bool
	// Err is a write or sync failure that stopped the recording early, if any.
	Err error
}

// markerReserve is room kept below the size cap for the final marker event.
const markerReserve = 160

// Recorder is one session's cast file; its methods are safe for concurrent use (output, input
// and resizes arrive from different goroutines) and never block on anything but the disk.
type Recorder struct {
	mgr     *Manager
	name    string
	f       *os.File
	start   time.Time
	max     int64
	input   bool
	release func()

	mu      sync.Mutex
	w       *bufio.Writer
	n       int64
	stopped bool
	capped  bool
	err     error
	closed  bool
	pending [2][]byte // incomplete UTF-8 sequence held back per stream (output, input)
	scratch []byte
	line    []byte
}

const (
	streamOut = 0
	streamIn  = 1
)

// Name is the file's base name (what the audit event carries).
func (r *Recorder) Name() string { return r.name }

// Output records data the session wrote to the client.
func (r *Recorder) Output(p []byte) { r.data(streamOut, "o", p) }

// Input records data the client sent, when input recording is on.
func (r *Recorder) Input(p []byte) {
	if r.input {
		r.data(streamIn, "i", p)
	}
}

// Resize records a window-change.
func (r *Recorder) Resize(cols, rows int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.event("r", []byte(strconv.Itoa(cols)+"x"+strconv.Itoa(rows)))
}

// Capped reports whether the size cap has stopped the recording.
func (r *Recorder) Capped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.capped
}

func (r *Recorder) data(stream int, code string, p []byte) {
	if len(p) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	buf := p
	if len(r.pending[stream]) > 0 {
		buf = append(append(r.scratch[:0], r.pending[stream]...), p...)
		r.scratch = buf
		r.pending[stream] = r.pending[stream][:0]
	}
	cut := incompleteTail(buf)
	if cut < len(buf) {
		r.pending[stream] = append(r.pending[stream][:0], buf[cut:]...)
		buf = buf[:cut]
	}
	if len(buf) > 0 {
		r.event(code, buf)
	}
}

// incompleteTail returns where a trailing, possibly incomplete UTF-8 sequence starts (len(b)
// when b ends on a character boundary or with bytes that can never complete).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		c := b[i]
		if c < 0x80 {
			return len(b)
		}
		if utf8.RuneStart(c) {
			if c < 0xC2 || c > 0xF4 || utf8.FullRune(b[i:]) {
				return len(b)
			}
			return i
		}
	}
	return len(b)
}

// event appends one event line; the caller holds mu.
func (r *Recorder) event(code string, data []byte) {
	if r.stopped {
		return
	}
	t := time.Since(r.start).Seconds()
	line := append(r.line[:0], '[')
	line = strconv.AppendFloat(line, t, 'f', 6, 64)
	line = append(line, ", \""...)
	line = append(line, code...)
	line = append(line, "\", "...)
	line = appendJSONString(line, data)
	line = append(line, "]\n"...)
	r.line = line[:0] // reused: the buffered writer copies
	if r.max > 0 && r.n+int64(len(line)) > r.max-markerReserve {
		r.capped = true
		r.stopped = true
		note := fmt.Sprintf("recording stopped: the file reached its size cap of %d bytes; the session went on", r.max)
		m := append([]byte("["), strconv.AppendFloat(nil, t, 'f', 6, 64)...)
		m = append(m, `, "m", `...)
		m = appendJSONString(m, []byte(note))
		m = append(m, "]\n"...)
		r.write(m)
		return
	}
	r.write(line)
}

func (r *Recorder) write(b []byte) {
	n, err := r.w.Write(b)
	r.n += int64(n)
	if err != nil {
		r.err = err
		r.stopped = true
	}
}

// Close flushes what is held back, syncs and closes the file (once) and reports the result.
func (r *Recorder) Close() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := Result{File: r.name, Capped: r.capped}
	if r.closed {
		res.Bytes, res.Err = r.n, r.err
		return res
	}
	r.closed = true
	for s, code := range []string{"o", "i"} {
		if len(r.pending[s]) > 0 && !r.stopped {
			r.event(code, r.pending[s]) // invalid as UTF-8: written as U+FFFD
		}
	}
	r.stopped = true
	err := r.w.Flush()
	if err == nil {
		err = r.f.Sync()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	if r.err == nil && err != nil {
		r.err = err
	}
	r.mgr.syncDir()
	r.release()
	res.Bytes, res.Err = r.n, r.err
	return res
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends data as a JSON string; invalid UTF-8 becomes U+FFFD so the line is
// always valid JSON.
func appendJSONString(dst, data []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		rn, size := utf8.DecodeRune(data[i:])
		if rn == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, data[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// ErrNoRoom is returned by Start when the directory cap leaves no room for a new recording
// even after deleting every finished one.
var ErrNoRoom = errors.New("recording directory is full of recordings in progress")
