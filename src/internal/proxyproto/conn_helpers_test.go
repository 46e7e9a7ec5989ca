package proxyproto

import (
	"bytes"
	"net"
	"time"
)

// memConn is a net.Conn whose peer sent data and then closed.
type memConn struct {
	r      *bytes.Reader
	remote net.Addr
}

func newMemConn(data []byte, remote string) *memConn {
	a, err := net.ResolveTCPAddr("tcp", remote)
	if err != nil {
		panic(err)
	}
	return &memConn{r: bytes.NewReader(data), remote: a}
}

func (c *memConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *memConn) Close() error                       { return nil }
func (c *memConn) LocalAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222} }
func (c *memConn) RemoteAddr() net.Addr               { return c.remote }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }
