package relay

import (
	"io"
	"sync"
)

// Buffer sizes for copying channel data. An SSH channel packet carries at most 32 KiB
// (x/crypto/ssh's maximum payload), so a read into a larger buffer never returns more.
const (
	// idleBufSize is what a copy loop holds while it waits for data. Every relayed session has
	// four copy loops (data and stderr, both directions); with thousands of idle sessions this
	// size, not the bulk size, decides the proxy's memory per session.
	idleBufSize = 512
	// bulkBufSize is the buffer used while data keeps arriving: one full channel packet.
	bulkBufSize = 32 << 10
)

// bulkBufs holds bulk buffers between bursts, shared by all sessions.
var bulkBufs = sync.Pool{New: func() any { b := make([]byte, bulkBufSize); return &b }}

// copyData copies src to dst until src ends or a write fails, and returns the bytes written.
//
// It waits for data with a small buffer. A read that fills it means more data is probably
// queued, so the following reads use a pooled bulk buffer; the bulk buffer goes back to the
// pool as soon as a read returns less than a full buffer (the source ran dry for the moment).
// Every byte read is written before the next read, so interactive traffic is never held back.
func copyData(dst io.Writer, src io.Reader) (int64, error) {
	small := make([]byte, idleBufSize)
	var bulk *[]byte
	defer func() {
		if bulk != nil {
			bulkBufs.Put(bulk)
		}
	}()
	var written int64
	for {
		buf := small
		if bulk != nil {
			buf = *bulk
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
			if w != n {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return written, nil
			}
			return written, rerr
		}
		switch {
		case bulk == nil && n == len(small):
			bulk = bulkBufs.Get().(*[]byte)
		case bulk != nil && n < len(buf):
			bulkBufs.Put(bulk)
			bulk = nil
		}
	}
}
