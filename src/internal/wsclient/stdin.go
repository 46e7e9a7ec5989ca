package wsclient

import (
	"io"
	"os"
	"syscall"
)

// Stdin returns f ready for Run: when f is a pipe or a socket (as under ssh's ProxyCommand)
// it is switched to non-blocking mode so that Run can stop the goroutine reading it with a
// read deadline. Terminals and regular files are left as they are: a terminal's mode is
// shared with the shell that started us.
func Stdin(f *os.File) io.Reader {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&(os.ModeNamedPipe|os.ModeSocket) == 0 {
		return f
	}
	fd := int(f.Fd())
	if err := syscall.SetNonblock(fd, true); err != nil {
		return f
	}
	return os.NewFile(uintptr(fd), f.Name())
}
