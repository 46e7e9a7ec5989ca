package scp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// serveSource implements "scp -f PATH...".
func (s *session) serveSource() error {
	// The sink starts the conversation with a single \0.
	if err := s.response(); errors.Is(err, errFatal) {
		return err
	}
	for _, operand := range s.cmd.Paths {
		for _, m := range s.expand(operand) {
			if err := s.ctx.Err(); err != nil {
				s.errs++
				return errFatal
			}
			if err := s.sendPath(m.path, m.disp, 0); errors.Is(err, errFatal) {
				return err
			}
		}
	}
	return nil
}

type operand struct{ path, disp string }

// expand resolves an operand. A pattern that names no existing file is
// expanded like an unquoted shell glob (no match leaves it as it is).
func (s *session) expand(op string) []operand {
	disp := op
	for len(disp) > 1 && strings.HasSuffix(disp, "/") {
		disp = strings.TrimSuffix(disp, "/")
	}
	p := s.resolve(disp)
	if !strings.ContainsAny(p, "*?[") {
		return []operand{{p, disp}}
	}
	if _, err := os.Lstat(p); err == nil {
		return []operand{{p, disp}}
	}
	matches, err := filepath.Glob(p)
	if err != nil || len(matches) == 0 {
		return []operand{{p, disp}}
	}
	out := make([]operand, 0, len(matches))
	for _, m := range matches {
		d := m
		if !filepath.IsAbs(disp) && s.workDir != "" {
			if rel, err := filepath.Rel(s.workDir, m); err == nil {
				d = rel
			}
		}
		out = append(out, operand{m, d})
	}
	return out
}

// sendPath sends one file, or with -r one directory tree.
func (s *session) sendPath(p, disp string, depth int) error {
	if strings.ContainsRune(p, '\n') {
		s.warn("%s: skipping, filename contains a newline", disp)
		return errSkipped
	}
	// O_NONBLOCK keeps a FIFO from blocking the open; it is refused below.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		s.warn("%s: %s", disp, errText(err))
		return errSkipped
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		s.warn("%s: %s", disp, errText(err))
		return errSkipped
	}
	switch {
	case st.Mode().IsRegular():
		defer f.Close()
		return s.sendFile(f, st, p, disp)
	case st.IsDir() && s.cmd.Recursive:
		names, err := f.Readdirnames(-1)
		_ = f.Close()
		if err != nil {
			s.warn("%s: %s", disp, errText(err))
			return errSkipped
		}
		return s.sendDir(names, st, p, disp, depth)
	default:
		_ = f.Close()
		s.warn("%s: not a regular file", disp)
		return errSkipped
	}
}

// sendFile sends a C record and the file's data.
func (s *session) sendFile(f *os.File, st os.FileInfo, p, disp string) error {
	if s.cmd.PreserveTimes {
		if err := s.sendTimes(st); err != nil {
			return err
		}
	}
	rec := fmt.Sprintf("C%04o %d %s\n", unixMode(st.Mode()), st.Size(), filepath.Base(p))
	s.verbosef("Sending file modes: %s", sanitize(strings.TrimSuffix(rec, "\n")))
	if _, err := s.out.WriteString(rec); err != nil {
		s.errs++
		return errFatal
	}
	if err := s.response(); err != nil {
		return err
	}

	var readErr error
	buf := s.buffer()
	for remaining := st.Size(); remaining > 0; {
		if err := s.ctx.Err(); err != nil {
			s.errs++
			return errFatal
		}
		n := int64(len(buf))
		if remaining < n {
			n = remaining
		}
		b := buf[:n]
		if readErr == nil {
			got, err := io.ReadFull(f, b)
			if err != nil {
				readErr = err
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					readErr = errors.New("file shrank while being sent")
				}
				clear(b[got:])
			}
		} else {
			clear(b)
		}
		// The announced size must be sent in full to keep the stream in
		// step; after a read error the rest is zeros and a warning follows.
		if _, err := s.out.Write(b); err != nil {
			s.errs++
			return errFatal
		}
		remaining -= n
	}
	if readErr != nil {
		s.warn("%s: %s", disp, errText(readErr))
	} else if err := s.out.WriteByte(0); err != nil {
		s.errs++
		return errFatal
	}
	return s.response()
}

// sendDir sends a D record, the directory's entries and the closing E.
func (s *session) sendDir(names []string, st os.FileInfo, p, disp string, depth int) error {
	name := filepath.Base(p)
	if !validName(name) {
		s.warn("%s: cannot send this directory by name", disp)
		return errSkipped
	}
	if depth+1 >= maxDepth {
		s.warn("%s: directories nested too deep", disp)
		return errSkipped
	}
	if s.cmd.PreserveTimes {
		if err := s.sendTimes(st); err != nil {
			return err
		}
	}
	rec := fmt.Sprintf("D%04o 0 %s\n", unixMode(st.Mode()), name)
	s.verbosef("Entering directory: %s", sanitize(strings.TrimSuffix(rec, "\n")))
	if _, err := s.out.WriteString(rec); err != nil {
		s.errs++
		return errFatal
	}
	if err := s.response(); err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		if err := s.ctx.Err(); err != nil {
			s.errs++
			return errFatal
		}
		child := p + "/" + n
		childDisp := strings.TrimSuffix(disp, "/") + "/" + n
		if len(child) >= maxPath {
			s.warn("%s: name too long", childDisp)
			continue
		}
		if err := s.sendPath(child, childDisp, depth+1); errors.Is(err, errFatal) {
			return err
		}
	}
	if _, err := s.out.WriteString("E\n"); err != nil {
		s.errs++
		return errFatal
	}
	return s.response()
}

// sendTimes sends a T record for st and waits for the reply.
func (s *session) sendTimes(st os.FileInfo) error {
	mtime := st.ModTime().Unix()
	atime := accessTime(st)
	if mtime < 0 {
		mtime = 0
	}
	if atime < 0 {
		atime = 0
	}
	rec := fmt.Sprintf("T%d 0 %d 0\n", mtime, atime)
	s.verbosef("Sending file timestamps: %s", strings.TrimSuffix(rec, "\n"))
	if _, err := s.out.WriteString(rec); err != nil {
		s.errs++
		return errFatal
	}
	return s.response()
}
