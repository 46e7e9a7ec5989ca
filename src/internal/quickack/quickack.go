// Package quickack removes the ~40 ms delayed-ACK stall from SSH handshakes on Linux.
//
// OpenSSH's client leaves Nagle's algorithm on for non-interactive sessions (`ssh host cmd`,
// scp, sftp). During the handshake it sends two small packets in a row (KEXINIT then
// KEX_ECDH_INIT; NEWKEYS then SERVICE_REQUEST) and Nagle holds the second one until the first
// is acknowledged. A Go server that has already sent what it had (x/crypto/ssh sends its own
// KEXINIT without waiting) has nothing to piggyback the ACK on, so the kernel's delayed-ACK
// timer decides: about 40 ms, twice per connection.
//
// Wrap re-arms TCP_QUICKACK after every read while the handshake runs, so each ACK leaves at
// once. Done stops it; afterwards the wrapper costs one atomic load per read.
package quickack

import (
	"net"
	"sync/atomic"
	"syscall"
)

// Conn is a connection that acknowledges received data at once until Done is called.
type Conn struct {
	net.Conn
	raw    syscall.RawConn
	active atomic.Bool
}

// Wrap returns c wrapped when it is a TCP connection (anything else is returned unchanged,
// along with a nil *Conn, whose Done is a no-op).
func Wrap(c net.Conn) (net.Conn, *Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	q := &Conn{Conn: c, raw: raw}
	q.active.Store(true)
	q.arm()
	return q, q
}

// Read reads from the connection and, until Done, sends the acknowledgement at once.
func (q *Conn) Read(p []byte) (int, error) {
	n, err := q.Conn.Read(p)
	if n > 0 && q.active.Load() {
		q.arm()
	}
	return n, err
}

// Done ends quick acknowledgements (after the handshake: bulk data is better served by the
// kernel's normal ACK policy). Safe on a nil *Conn and from any goroutine.
func (q *Conn) Done() {
	if q != nil {
		q.active.Store(false)
	}
}

// Active reports whether quick acknowledgements are still on.
func (q *Conn) Active() bool { return q != nil && q.active.Load() }

func (q *Conn) arm() {
	_ = q.raw.Control(func(fd uintptr) {
		_ = setQuickAck(int(fd))
	})
}
