package scp

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fileTimes holds the times announced by a T record.
type fileTimes struct {
	set          bool
	mtime, atime time.Time
}

// serveSink implements "scp -t TARGET".
func (s *session) serveSink() error {
	if len(s.cmd.Paths) != 1 {
		s.fatal("ambiguous target")
		return errFatal
	}
	disp := s.cmd.Paths[0]
	targ := s.resolve(disp)
	if s.cmd.TargetIsDir {
		st, err := os.Stat(targ)
		switch {
		case err != nil:
			s.fatal("%s: %s", disp, errText(err))
			return errFatal
		case !st.IsDir():
			s.fatal("%s: Not a directory", disp)
			return errFatal
		}
	}
	return s.sink(targ, disp, 0)
}

// sink receives records into targ until the matching E record (or, at the
// top level, the end of the stream).
func (s *session) sink(targ, disp string, depth int) error {
	if err := s.ack(); err != nil {
		s.errs++
		return errFatal
	}
	targIsDir := false
	if st, err := os.Stat(targ); err == nil && st.IsDir() {
		targIsDir = true
	}
	var times fileTimes
	for {
		if err := s.ctx.Err(); err != nil {
			s.errs++
			return errFatal
		}
		kind, err := s.in.ReadByte()
		if err != nil {
			if err == io.EOF && depth == 0 {
				return nil
			}
			s.fatal("lost connection")
			return errFatal
		}
		if kind == '\n' {
			s.fatal("protocol error: unexpected <newline>")
			return errFatal
		}
		rest, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.fatal("protocol error: line too long")
			return errFatal
		case err != nil:
			s.fatal("lost connection")
			return errFatal
		}
		line := string(kind) + strings.TrimSuffix(rest, "\n")
		s.verbosef("Sink: %s", sanitize(line))

		switch kind {
		case 1, 2:
			// The peer reports a failure of its own.
			s.errs++
			if kind == 2 {
				return errFatal
			}
			continue
		case 'E':
			if err := s.ack(); err != nil {
				s.errs++
				return errFatal
			}
			return nil
		case 'T':
			t, err := parseTimes(line)
			if err != nil {
				s.fatal("protocol error: %s", err)
				return errFatal
			}
			times = t
			if err := s.ack(); err != nil {
				s.errs++
				return errFatal
			}
			continue
		case 'C', 'D':
		default:
			s.fatal("protocol error: expected control record")
			return errFatal
		}

		mode, size, name, err := parseRecord(line)
		if err != nil {
			s.fatal("protocol error: %s", err)
			return errFatal
		}
		if !validName(name) {
			s.fatal("error: unexpected filename: %s", name)
			return errFatal
		}
		np, ndisp := targ, disp
		if targIsDir {
			np = filepath.Join(targ, name)
			ndisp = strings.TrimSuffix(disp, "/") + "/" + name
		}
		t := times
		times = fileTimes{}
		if kind == 'D' {
			if !s.cmd.Recursive {
				s.fatal("protocol error: received directory without -r")
				return errFatal
			}
			if depth+1 >= maxDepth {
				s.fatal("protocol error: directories nested too deep")
				return errFatal
			}
			if err := s.sinkDir(np, ndisp, mode, t, depth); errors.Is(err, errFatal) {
				return err
			}
			continue
		}
		if err := s.sinkFile(np, ndisp, mode, size, t); errors.Is(err, errFatal) {
			return err
		}
	}
}

// sinkDir handles a D record: it creates (or reuses) the directory, receives
// its contents and then applies mode and times.
func (s *session) sinkDir(np, disp string, mode uint32, t fileTimes, depth int) error {
	created := false
	if st, err := os.Stat(np); err == nil {
		if !st.IsDir() {
			s.warn("%s: Not a directory", disp)
			return errSkipped
		}
	} else {
		if err := os.Mkdir(np, goMode(mode|0o700)); err != nil {
			s.warn("%s: %s", disp, errText(err))
			return errSkipped
		}
		created = true
	}
	if err := s.sink(np, disp, depth+1); err != nil {
		return err
	}
	// The E record has been acknowledged already, so the protocol has no
	// reply slot left for these; like OpenSSH, failures here are not sent.
	switch {
	case s.cmd.PreserveTimes:
		if err := os.Chmod(np, goMode(mode)); err != nil {
			s.verbosef("%s: chmod: %s", sanitize(disp), errText(err))
		}
	case created && mode&0o700 != 0o700:
		// Created with owner rwx so the contents could be written; now
		// drop the owner bits the record did not ask for (umask kept).
		if st, err := os.Stat(np); err == nil {
			want := st.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
			want &^= os.FileMode(0o700 &^ mode)
			if err := os.Chmod(np, want); err != nil {
				s.verbosef("%s: chmod: %s", sanitize(disp), errText(err))
			}
		}
	}
	if t.set {
		if err := os.Chtimes(np, t.atime, t.mtime); err != nil {
			s.verbosef("%s: set times: %s", sanitize(disp), errText(err))
		}
	}
	return nil
}

// sinkFile handles a C record: it acknowledges it, streams size bytes into
// np and reports the outcome.
func (s *session) sinkFile(np, disp string, mode uint32, size int64, t fileTimes) error {
	st, statErr := os.Stat(np)
	exists := statErr == nil
	f, err := os.OpenFile(np, os.O_WRONLY|os.O_CREATE, goMode(mode|0o200))
	if err != nil {
		s.warn("%s: %s", disp, errText(err))
		return errSkipped
	}
	closed := false
	defer func() {
		if !closed {
			_ = f.Close()
		}
	}()
	if err := s.ack(); err != nil {
		s.errs++
		return errFatal
	}

	var wrErr error
	buf := s.buffer()
	for remaining := size; remaining > 0; {
		if err := s.ctx.Err(); err != nil {
			s.errs++
			return errFatal
		}
		n := int64(len(buf))
		if remaining < n {
			n = remaining
		}
		if _, err := io.ReadFull(s.in, buf[:n]); err != nil {
			s.fatal("lost connection")
			return errFatal
		}
		if wrErr == nil {
			if _, err := f.Write(buf[:n]); err != nil {
				wrErr = err
			}
		}
		remaining -= n
	}

	var note error
	if wrErr == nil && (!exists || st.Mode().IsRegular()) {
		if err := f.Truncate(size); err != nil {
			note = err
		}
	}
	if wrErr == nil {
		switch {
		case s.cmd.PreserveTimes:
			if err := f.Chmod(goMode(mode)); err != nil && note == nil {
				note = err
			}
		case !exists && mode&0o200 == 0:
			if fst, err := f.Stat(); err == nil {
				if err := f.Chmod(fst.Mode() &^ 0o200); err != nil && note == nil {
					note = err
				}
			}
		}
	}
	closed = true
	if err := f.Close(); err != nil && wrErr == nil {
		wrErr = err
	}

	// The source ends the data with \0, or with a warning if it could not
	// read the file completely.
	if err := s.response(); errors.Is(err, errFatal) {
		return err
	}
	if t.set && wrErr == nil {
		if err := os.Chtimes(np, t.atime, t.mtime); err != nil && note == nil {
			note = err
		}
	}
	switch {
	case wrErr != nil:
		s.warn("%s: %s", disp, errText(wrErr))
		return errSkipped
	case note != nil:
		s.warn("%s: %s", disp, errText(note))
		return errSkipped
	}
	if err := s.ack(); err != nil {
		s.errs++
		return errFatal
	}
	return nil
}

// buffer returns the session's data buffer.
func (s *session) buffer() []byte {
	if s.chunk == nil {
		s.chunk = make([]byte, chunkSize)
	}
	return s.chunk
}

// validName rejects names that would escape the target directory or are
// not a single path element (CVE-2018-20685, CVE-2019-6111).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// parseRecord parses "C<mode> <size> <name>" or "D<mode> <size> <name>"
// (the newline already removed).
func parseRecord(line string) (mode uint32, size int64, name string, err error) {
	if len(line) < 5 {
		return 0, 0, "", errors.New("bad mode")
	}
	for i := 1; i < 5; i++ {
		c := line[i]
		if c < '0' || c > '7' {
			return 0, 0, "", errors.New("bad mode")
		}
		mode = mode<<3 | uint32(c-'0')
	}
	rest, ok := strings.CutPrefix(line[5:], " ")
	if !ok {
		return 0, 0, "", errors.New("mode not delimited")
	}
	digits, rest := leadingDigits(rest)
	if digits == "" {
		return 0, 0, "", errors.New("size not present")
	}
	size, perr := strconv.ParseInt(digits, 10, 64)
	if perr != nil {
		return 0, 0, "", errors.New("size out of range")
	}
	name, ok = strings.CutPrefix(rest, " ")
	if !ok {
		return 0, 0, "", errors.New("size not delimited")
	}
	return mode, size, name, nil
}

// parseTimes parses "T<mtime> <usec> <atime> <usec>".
func parseTimes(line string) (fileTimes, error) {
	rest := line[1:]
	msec, rest := leadingDigits(rest)
	if msec == "" {
		return fileTimes{}, errors.New("mtime.sec not present")
	}
	rest, ok := strings.CutPrefix(rest, " ")
	if !ok {
		return fileTimes{}, errors.New("mtime.sec not delimited")
	}
	musec, rest := leadingDigits(rest)
	rest, ok = strings.CutPrefix(rest, " ")
	if !ok || !validUsec(musec) {
		return fileTimes{}, errors.New("mtime.usec not delimited")
	}
	asec, rest := leadingDigits(rest)
	if asec == "" {
		return fileTimes{}, errors.New("atime.sec not present")
	}
	rest, ok = strings.CutPrefix(rest, " ")
	if !ok {
		return fileTimes{}, errors.New("atime.sec not delimited")
	}
	ausec, rest := leadingDigits(rest)
	if rest != "" || !validUsec(ausec) {
		return fileTimes{}, errors.New("atime.usec not delimited")
	}
	m, merr := strconv.ParseInt(msec, 10, 64)
	a, aerr := strconv.ParseInt(asec, 10, 64)
	mu, _ := strconv.ParseInt(musec, 10, 64)
	au, _ := strconv.ParseInt(ausec, 10, 64)
	// Like OpenSSH, times out of range are ignored rather than refused.
	const maxSec = 1 << 40
	if merr != nil || aerr != nil || m > maxSec || a > maxSec {
		return fileTimes{}, nil
	}
	return fileTimes{
		set:   true,
		mtime: time.Unix(m, mu*1000),
		atime: time.Unix(a, au*1000),
	}, nil
}

// validUsec accepts a microseconds field: digits worth 0..999999.
func validUsec(d string) bool {
	if d == "" || len(d) > 18 {
		return false
	}
	v, err := strconv.ParseInt(d, 10, 64)
	return err == nil && v <= 999999
}

// leadingDigits splits s after its leading ASCII digits.
func leadingDigits(s string) (string, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}
