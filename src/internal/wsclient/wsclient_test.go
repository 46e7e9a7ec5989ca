package wsclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/wsclient"
	"github.com/app-ssh/app-ssh/internal/wslisten"
)

type server struct {
	l      *wslisten.Listener
	caFile string
	url    string
}

// newServer is a wslisten listener whose certificate names only name.
func newServer(t *testing.T, name string, maxMessage int64) *server {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA("wsclient test CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue(name, name)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := kp.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteFile(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	l, err := wslisten.Listen(wslisten.Config{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, MaxMessageBytes: maxMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return &server{l: l, caFile: caFile, url: "wss://" + l.Addr().String() + "/"}
}

func run(t *testing.T, opts wsclient.Options, stdin io.Reader, stdout io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return wsclient.Run(ctx, opts, stdin, stdout)
}

func TestHostnameMismatchIsNamed(t *testing.T) {
	s := newServer(t, "other.example.test", 0)
	err := run(t, wsclient.Options{URL: s.url, CACertFile: s.caFile}, strings.NewReader(""), io.Discard)
	var we *wsclient.Error
	if !errors.As(err, &we) {
		t.Fatalf("want *wsclient.Error, got %v", err)
	}
	if we.URL != s.url || !strings.HasPrefix(we.Cause, "TLS: ") || !strings.Contains(we.Cause, "cannot validate certificate for 127.0.0.1") {
		t.Fatalf("unclear failure: %q", err)
	}
}

func TestUnreadableCACertIsNamed(t *testing.T) {
	s := newServer(t, "127.0.0.1", 0)
	bad := filepath.Join(t.TempDir(), "not-pem")
	if err := os.WriteFile(bad, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(t, wsclient.Options{URL: s.url, CACertFile: bad}, strings.NewReader(""), io.Discard)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("unclear failure: %v", err)
	}
}

// A close status other than normal or going-away is a failure, worded with the status and reason.
func TestAbnormalCloseIsAnError(t *testing.T) {
	s := newServer(t, "127.0.0.1", 8)
	stdinR, stdinW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(t, wsclient.Options{URL: s.url, CACertFile: s.caFile}, stdinR, io.Discard)
	}()
	c, err := s.l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { _, _ = io.Copy(io.Discard, c) }()
	// More than the server's 8-byte message limit: the server closes with 1009.
	if _, err := stdinW.Write(bytes.Repeat([]byte("x"), 64)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "status 1009") {
			t.Fatalf("want a 1009 failure, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	_ = stdinW.Close()
}

// stdin that supports read deadlines is released when the server ends the connection.
func TestServerCloseReleasesStdinReader(t *testing.T) {
	s := newServer(t, "127.0.0.1", 0)
	mine, theirs := net.Pipe()
	defer mine.Close()
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- run(t, wsclient.Options{URL: s.url, CACertFile: s.caFile}, theirs, &out) }()
	c, err := s.l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a normal close by the server is success, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return though the server closed")
	}
	if out.String() != "hello" {
		t.Fatalf("stdout got %q", out.String())
	}
	// Nobody reads stdin any more: a write to it finds no reader.
	_ = mine.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := mine.Write([]byte("x")); err == nil {
		t.Fatal("stdin is still being read after Run returned")
	}
}
