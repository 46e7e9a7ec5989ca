package sshd

import (
	"io"
	"sync/atomic"
	"time"
)

// activity records when channel data last moved on a connection (for the idle timeout).
type activity struct{ last atomic.Int64 }

func newActivity() *activity {
	a := &activity{}
	a.touch()
	return a
}

func (a *activity) touch()                 { a.last.Store(time.Now().UnixNano()) }
func (a *activity) idleFor() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// activeReader/activeWriter touch the activity clock on every channel read/write.
type activeReader struct {
	r   io.Reader
	act *activity
}

func (a activeReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.act.touch()
	}
	return n, err
}

type activeWriter struct {
	w   io.Writer
	act *activity
}

func (a activeWriter) Write(p []byte) (int, error) {
	n, err := a.w.Write(p)
	if n > 0 {
		a.act.touch()
	}
	return n, err
}

// copyBufSize is the buffer for channel copies: large enough to fill several SSH packets
// (32 KiB each) per syscall.
const copyBufSize = 256 << 10

func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}
