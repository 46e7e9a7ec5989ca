package proxyproto

import (
	"bytes"
	"io"
	"net/netip"
	"testing"
)

// FuzzWrap feeds arbitrary bytes, from an allowed or a foreign peer, through Wrap: it must not
// panic; on success, what is read afterwards is exactly the tail of the input; a foreign peer
// is never given another address, and an allowed peer's address comes from a parsed header.
func FuzzWrap(f *testing.F) {
	f.Add([]byte("PROXY TCP4 198.51.100.7 10.0.0.5 40000 2222\r\nSSH-2.0-x\r\n"), true)
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"), true)
	f.Add([]byte("PROXY UNKNOWN\r\n"), true)
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc6\x33\x64\x07\x0a\x00\x00\x05\x9c\x40\x08\xae"), true)
	f.Add([]byte("SSH-2.0-x\r\n"), false)
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), false)
	p, err := NewPolicy([]string{"10.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, fromAllowed bool) {
		peer := "203.0.113.1:5000"
		if fromAllowed {
			peer = "10.1.1.1:5000"
		}
		c, err := p.Wrap(newMemConn(data, peer))
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(io.LimitReader(c, int64(len(data))+1))
		if !bytes.HasSuffix(data, rest) {
			t.Fatalf("stream after the header is not the input's tail: %q of %q", rest, data)
		}
		remote := AddrOf(c.RemoteAddr())
		if !fromAllowed {
			if remote != netip.MustParseAddr("203.0.113.1") || len(rest) != len(data) {
				t.Fatalf("foreign peer: remote %v, %d of %d bytes", remote, len(rest), len(data))
			}
			return
		}
		if len(rest) == len(data) {
			t.Fatalf("allowed peer accepted without consuming a header: %q", data)
		}
		if !remote.IsValid() {
			t.Fatalf("no valid client address from %q", data)
		}
	})
}
