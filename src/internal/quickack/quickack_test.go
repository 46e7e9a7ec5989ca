package quickack

import (
	"io"
	"net"
	"testing"
)

func TestWrapPassesDataAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	raw, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	c, q := Wrap(raw)
	defer c.Close()
	if q == nil || c != net.Conn(q) || !q.Active() {
		t.Fatalf("a TCP connection must be wrapped and active: conn %T, q %v", c, q)
	}
	for _, msg := range []string{"SSH-2.0-x\r\n", "kexinit"} {
		if _, err := client.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
			t.Fatalf("read %q, %v; want %q", buf, err, msg)
		}
	}
	q.Done()
	if q.Active() {
		t.Fatal("still active after Done")
	}
	if _, err := client.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "after" {
		t.Fatalf("read %q, %v after Done", buf, err)
	}
	// Writes and the rest of net.Conn pass through.
	if _, err := c.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf[:4]); err != nil || string(buf[:4]) != "back" {
		t.Fatalf("client read %q, %v", buf[:4], err)
	}
	if c.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("remote %v, want %v", c.RemoteAddr(), client.LocalAddr())
	}
}

func TestWrapLeavesOtherConnectionsAlone(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c, q := Wrap(a)
	if c != a || q != nil {
		t.Fatalf("a pipe must come back unchanged, got %T %v", c, q)
	}
	q.Done() // nil-safe
	if q.Active() {
		t.Fatal("nil Conn reports active")
	}
}
