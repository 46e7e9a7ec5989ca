package scp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/scp"
)

// FuzzParseAndSink parses a command line, then feeds arbitrary protocol
// bytes to a sink rooted in a temporary work directory. It must never
// panic, must answer with exit status 0 or 1, and must never create
// anything outside the work directory.
func FuzzParseAndSink(f *testing.F) {
	f.Add("scp -t .", []byte("C0644 5 a.txt\nhello\x00"))
	f.Add("scp -rpt .", []byte("T1000000000 0 1000000000 0\nD0755 0 d\nC0600 3 f\nabc\x00E\n"))
	f.Add("scp -r -t -- x", []byte("D0755 0 ..\n"))
	f.Add("scp -f 'a b'", []byte("C0644 3 ../x\nabc\x00"))
	f.Add("ls; id", []byte("\x01scp: warning\nC0644 1 z\nz\x00"))

	f.Fuzz(func(t *testing.T, cmdline string, data []byte) {
		cmd, err := scp.Parse(cmdline)
		sink := &scp.Command{Sink: true, Recursive: true, Paths: []string{"."}}
		switch {
		case err != nil:
			if !errors.Is(err, scp.ErrNotSCP) {
				t.Fatalf("Parse(%q) error does not wrap ErrNotSCP: %v", cmdline, err)
			}
			if cmd != nil {
				t.Fatalf("Parse(%q) returned a command with an error", cmdline)
			}
		case cmd.Sink == cmd.Source:
			t.Fatalf("Parse(%q) = %+v: exactly one of -t and -f must be set", cmdline, cmd)
		default:
			// Take the flags, never the paths: those could point anywhere.
			sink.Recursive = cmd.Recursive
			sink.PreserveTimes = cmd.PreserveTimes
			sink.Verbose = cmd.Verbose
		}

		outer := t.TempDir()
		work := filepath.Join(outer, "work")
		if err := os.Mkdir(work, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { chmodAllWritable(outer) })

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var replies bytes.Buffer
		code := sink.Run(ctx, bytes.NewReader(data), &replies, io.Discard, work)
		if code != 0 && code != 1 {
			t.Fatalf("exit status %d", code)
		}
		r := replies.Bytes()
		if len(r) == 0 || r[0] != 0 {
			t.Fatalf("the sink did not start with its go-ahead: %q", r)
		}
		if code == 0 && bytes.ContainsAny(r, "\x01\x02") {
			t.Fatalf("status 0 after an error reply: %q", r)
		}

		entries, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "work" {
			t.Fatalf("something was written beside the work directory: %v", entries)
		}
		err = filepath.Walk(work, func(path string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if info.Mode()&os.ModeSymlink != 0 {
				t.Errorf("symlink created: %s", path)
			}
			if !info.Mode().IsRegular() && !info.IsDir() {
				t.Errorf("special file created: %s", path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
