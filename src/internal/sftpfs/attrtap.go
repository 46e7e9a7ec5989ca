package sftpfs

import (
	"bytes"
	"encoding/binary"
	"io"
	"path"
	"sync"
)

// attrTap recovers attributes pkg/sftp's request server drops before its handlers see them:
//
//   - for SSH_FXP_OPEN it hands over Request.Flags = the open flags and Request.Attrs = the raw
//     attribute bytes, without the attribute flags that say which fields those bytes hold, so
//     the mode a client asks a new file to have cannot be decoded;
//   - for SSH_FXP_MKDIR it does not decode the attributes at all.
//
// The tap reads each OPEN and MKDIR off the incoming packet stream (every other packet's body
// is skipped, not copied) and queues its attributes. The server handles both kinds one at a
// time in arrival order (pkg/sftp's single command worker), so a handler takes the oldest
// queued entry that matches its Request (open flags and attribute bytes, or the path); entries
// of requests no handler saw are dropped on the way.
type attrTap struct {
	r       io.Reader
	workDir string

	// Parser state, touched only by Read (the server's single reader).
	hdr  [5]byte // uint32 length, byte type
	nhdr int
	left int    // body bytes of the current packet still to come
	body []byte // the current OPEN's or MKDIR's body; nil while skipping another packet's

	mu     sync.Mutex
	opens  []tapped
	mkdirs []tapped
}

type tapped struct {
	path              string // as sent
	pflags, attrFlags uint32
	attrs             []byte // the attribute fields after the flags
}

// Packet types and attribute flags (draft-ietf-secsh-filexfer-02).
const (
	fxpOpen                    = 3
	fxpMkdir                   = 14
	sshFileXferAttrSize        = 0x1
	sshFileXferAttrUIDGID      = 0x2
	sshFileXferAttrPermissions = 0x4
)

const (
	// maxTappedBody bounds what is kept of one packet: a path and a few attributes. A longer
	// one is not recorded (its handler then uses the default mode).
	maxTappedBody = 64 << 10
	// maxQueued bounds entries never taken (a request refused before any handler ran).
	maxQueued = 64
)

func (t *attrTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.feed(p[:n])
	return n, err
}

func (t *attrTap) feed(b []byte) {
	for len(b) > 0 {
		if t.left == 0 {
			c := copy(t.hdr[t.nhdr:], b)
			t.nhdr += c
			b = b[c:]
			if t.nhdr < len(t.hdr) {
				return
			}
			length := int(binary.BigEndian.Uint32(t.hdr[:4]))
			t.left, t.nhdr, t.body = length-1, 0, nil // the type byte is in hdr
			if typ := t.hdr[4]; (typ == fxpOpen || typ == fxpMkdir) && length <= maxTappedBody {
				t.body = make([]byte, 0, t.left)
			}
			if t.left <= 0 {
				t.left = 0
				t.record(t.hdr[4], t.body)
			}
			continue
		}
		c := min(t.left, len(b))
		if t.body != nil {
			t.body = append(t.body, b[:c]...)
		}
		t.left -= c
		b = b[c:]
		if t.left == 0 {
			t.record(t.hdr[4], t.body)
		}
	}
}

// record queues an OPEN (id, path, pflags, attrs) or MKDIR (id, path, attrs) body.
func (t *attrTap) record(typ byte, body []byte) {
	if body == nil || len(body) < 8 {
		return
	}
	body = body[4:] // request id
	plen := int(binary.BigEndian.Uint32(body))
	if plen > len(body)-4 {
		return
	}
	e := tapped{path: string(body[4 : 4+plen])}
	body = body[4+plen:]
	if typ == fxpOpen {
		if len(body) < 4 {
			return
		}
		e.pflags, body = binary.BigEndian.Uint32(body), body[4:]
	}
	if len(body) < 4 {
		return
	}
	e.attrFlags, e.attrs = binary.BigEndian.Uint32(body), body[4:]
	t.mu.Lock()
	defer t.mu.Unlock()
	q := &t.opens
	if typ == fxpMkdir {
		q = &t.mkdirs
	}
	if len(*q) == maxQueued {
		*q = (*q)[1:]
	}
	*q = append(*q, e)
}

// take removes and returns the oldest entry of q that match accepts, with every older one.
func (t *attrTap) take(q *[]tapped, match func(tapped) bool) (tapped, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, e := range *q {
		if match(e) {
			*q = (*q)[i+1:]
			return e, true
		}
	}
	return tapped{}, false
}

// openMode is the permissions an OPEN with these open flags and attribute bytes asked for.
func (t *attrTap) openMode(pflags uint32, attrs []byte) (uint32, bool) {
	e, ok := t.take(&t.opens, func(e tapped) bool { return e.pflags == pflags && bytes.Equal(e.attrs, attrs) })
	if !ok {
		return 0, false
	}
	return e.perm()
}

// mkdirMode is the permissions the MKDIR of p (as the server resolved it) asked for.
func (t *attrTap) mkdirMode(p string) (uint32, bool) {
	e, ok := t.take(&t.mkdirs, func(e tapped) bool { return resolve(t.workDir, e.path) == p })
	if !ok {
		return 0, false
	}
	return e.perm()
}

// resolve is a client path as pkg/sftp's request server turns it into Request.Filepath.
func resolve(workDir, p string) string {
	p = path.Clean(p)
	if !path.IsAbs(p) {
		return path.Join(workDir, p)
	}
	return p
}

// perm decodes the permissions (with set-id and sticky bits), which follow the size (8 bytes)
// and uid/gid (8 bytes) when those are present.
func (e tapped) perm() (uint32, bool) {
	if e.attrFlags&sshFileXferAttrPermissions == 0 {
		return 0, false
	}
	a := e.attrs
	if e.attrFlags&sshFileXferAttrSize != 0 {
		a = a[min(8, len(a)):]
	}
	if e.attrFlags&sshFileXferAttrUIDGID != 0 {
		a = a[min(8, len(a)):]
	}
	if len(a) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a) & 0o7777, true
}
