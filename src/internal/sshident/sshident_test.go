package sshident_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/sshident"
)

// exchange sends client's bytes through a wrapped pipe, reads like x/crypto/ssh does (one byte
// at a time up to the first LF), and returns the first line read, the read error and what the
// client received back.
func exchange(t *testing.T, client string) (string, error, string) {
	t.Helper()
	srv, cli := net.Pipe()
	defer cli.Close()
	w := sshident.Wrap(srv)
	_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
	_ = cli.SetDeadline(time.Now().Add(5 * time.Second))
	got := make(chan string, 1)
	go func() {
		go func() { _, _ = io.WriteString(cli, client) }()
		b, _ := bufio.NewReader(cli).ReadString('\n')
		got <- b
	}()
	var line []byte
	var err error
	one := make([]byte, 1)
	for {
		var n int
		n, err = w.Read(one)
		if n == 1 {
			line = append(line, one[0])
			if one[0] == '\n' {
				break
			}
		}
		if err != nil {
			break
		}
	}
	srv.Close()
	return string(line), err, <-got
}

func TestAcceptsSSH2AndSSH199Identifications(t *testing.T) {
	for _, id := range []string{"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH-1.99-PuTTY\r\n", "SSH-2.0-paramiko_3.4\n"} {
		line, err, back := exchange(t, id)
		if err != nil || line != id || back != "" {
			t.Errorf("%q: read %q, err %v, client got %q; want it passed through untouched", id, line, err, back)
		}
	}
}

func TestRefusesLikeOpenSSH(t *testing.T) {
	for id, reason := range map[string]string{
		"SSH-1.5-OldClient\r\n":                              sshident.ReasonVersion,
		"SSH-3.0-Future\r\n":                                 sshident.ReasonVersion,
		"GET / HTTP/1.1\r\n":                                 sshident.ReasonInvalid,
		"\x16\x03\x01\x02\x00" + strings.Repeat("\x00", 512): sshident.ReasonInvalid, // a TLS ClientHello, no line end
		"SSH-2.0-\r\n":                                       sshident.ReasonInvalid, // no software version
		"SSH-2-x\r\n":                                        sshident.ReasonInvalid,
		"SSH-" + strings.Repeat("9", 300):                    sshident.ReasonInvalid,
	} {
		_, err, back := exchange(t, id)
		var ie *sshident.Error
		if !errors.As(err, &ie) || ie.Reason != reason {
			t.Errorf("%q: err %v, want an *Error with %q", id, err, reason)
			continue
		}
		if back != reason+"\r\n" {
			t.Errorf("%q: client got %q, want %q", id, back, reason+"\r\n")
		}
		if len(ie.Error()) > 400 {
			t.Errorf("%q: error is %d bytes long, want it capped", id, len(ie.Error()))
		}
	}
}
