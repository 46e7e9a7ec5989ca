package server

import (
	"testing"

	"github.com/app-ssh/app-ssh/internal/limits"
)

func TestProgressScanner(t *testing.T) {
	// An identification line after a banner line, then a 12-byte packet (length 8 + 8 bytes),
	// then more: delivered in every possible split of two reads.
	stream := []byte("hello there\r\nSSH-2.0-OpenSSH_9.2\r\n\x00\x00\x00\x08abcdefghREST")
	identifiedAt := len("hello there\r\nSSH-2.0-OpenSSH_9.2\r\n")
	kexAt := identifiedAt + 12
	for cut := 0; cut <= len(stream); cut++ {
		var p progressScanner
		var got []limits.Stage
		var at []int
		for i, part := range [][]byte{stream[:cut], stream[cut:]} {
			if s, ok := p.feed(part); ok {
				got = append(got, s)
				at = append(at, i)
			}
		}
		// The last stage a read reaches is reported for that read.
		want := limits.KexInit
		if cut >= identifiedAt && cut < kexAt {
			if len(got) != 2 || got[0] != limits.Identified || got[1] != limits.KexInit {
				t.Fatalf("cut %d: stages %v", cut, got)
			}
			continue
		}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("cut %d: stages %v at reads %v, want just %v", cut, got, at, want)
		}
	}

	var p progressScanner
	if _, ok := p.feed([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); ok {
		t.Fatal("lines that are not an SSH identification must not count")
	}
	if s, ok := p.feed([]byte("SSH-2.0-slow")); ok {
		t.Fatalf("an identification line without its newline counted as %v", s)
	}
	if s, ok := p.feed([]byte("\n\x00\x00")); !ok || s != limits.Identified {
		t.Fatalf("got %v %v, want Identified", s, ok)
	}
	if _, ok := p.feed([]byte("\x01\x00")); ok {
		t.Fatal("a packet of 256 bytes is not complete after its length")
	}
	if s, ok := p.feed(make([]byte, 256)); !ok || s != limits.KexInit {
		t.Fatalf("got %v %v, want KexInit", s, ok)
	}
	if _, ok := p.feed([]byte("more")); ok {
		t.Fatal("nothing after the first packet counts")
	}
}
