package server

import (
	"bytes"
	"encoding/binary"

	"github.com/app-ssh/app-ssh/internal/limits"
)

// progressScanner follows the first bytes a client sends (RFC 4253 section 4.2 and 6) far
// enough to tell how far it has got: its identification line ("SSH-..." ending in LF; other
// lines may come first), then its first binary packet, which is its KEXINIT. It never buffers
// more than the four bytes of a packet length, and stops looking once it saw that packet.
type progressScanner struct {
	state   int    // 0: looking for the identification line, 1: packet length, 2: packet body, 3: done
	lineBeg []byte // up to 4 bytes of the current line's start
	lenBuf  [4]byte
	lenHave int
	left    uint32
}

// feed takes the next bytes read from the client; it reports the stage reached when it
// changes.
func (p *progressScanner) feed(b []byte) (limits.Stage, bool) {
	reached, changed := limits.Connected, false
	for len(b) > 0 && p.state < 3 {
		switch p.state {
		case 0:
			i := bytes.IndexByte(b, '\n')
			line := b
			if i >= 0 {
				line = b[:i]
			}
			if need := 4 - len(p.lineBeg); need > 0 {
				p.lineBeg = append(p.lineBeg, line[:min(need, len(line))]...)
			}
			if i < 0 {
				return reached, changed
			}
			b = b[i+1:]
			if string(p.lineBeg) == "SSH-" {
				p.state, reached, changed = 1, limits.Identified, true
			}
			p.lineBeg = p.lineBeg[:0]
		case 1:
			n := copy(p.lenBuf[p.lenHave:], b)
			p.lenHave += n
			b = b[n:]
			if p.lenHave == 4 {
				p.left = binary.BigEndian.Uint32(p.lenBuf[:])
				p.state = 2
				if p.left == 0 {
					p.state, reached, changed = 3, limits.KexInit, true
				}
			}
		case 2:
			n := uint32(min(uint64(len(b)), uint64(p.left)))
			p.left -= n
			b = b[n:]
			if p.left == 0 {
				p.state, reached, changed = 3, limits.KexInit, true
			}
		}
	}
	return reached, changed
}
