package sshd

import "io"

// copyBufSize is the buffer for channel copies: large enough to fill several SSH packets
// (32 KiB each) per syscall.
const copyBufSize = 256 << 10

func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBufSize)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
}
