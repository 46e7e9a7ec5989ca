package sshd

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

// pollable returns a non-blocking duplicate of f registered with the runtime poller (so Close
// unblocks a pending Read) and closes f.
func pollable(f *os.File) (*os.File, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := raw.Control(func(fd uintptr) { nfd, derr = unix.Dup(int(fd)) }); err != nil {
		return nil, err
	}
	f.Close()
	if derr != nil {
		return nil, derr
	}
	unix.CloseOnExec(nfd)
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), "/dev/ptmx"), nil
}

func setWinsize(master *os.File, cols, rows, wpx, hpx uint32) error {
	raw, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = raw.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{
			Row: uint16(rows), Col: uint16(cols), Xpixel: uint16(wpx), Ypixel: uint16(hpx),
		})
	})
	if err != nil {
		return err
	}
	return ierr
}

// Terminal mode opcodes of RFC 4254 section 8 mapped onto Linux termios.
var ccModes = map[byte]int{
	1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF, 6: unix.VEOL,
	7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP, 12: unix.VREPRINT,
	13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
}

type flagMode struct {
	field int // 0 iflag, 1 lflag, 2 oflag, 3 cflag
	bit   uint32
}

var flagModes = map[byte]flagMode{
	30: {0, unix.IGNPAR}, 31: {0, unix.PARMRK}, 32: {0, unix.INPCK}, 33: {0, unix.ISTRIP},
	34: {0, unix.INLCR}, 35: {0, unix.IGNCR}, 36: {0, unix.ICRNL}, 37: {0, unix.IUCLC},
	38: {0, unix.IXON}, 39: {0, unix.IXANY}, 40: {0, unix.IXOFF}, 41: {0, unix.IMAXBEL},
	42: {0, unix.IUTF8},
	50: {1, unix.ISIG}, 51: {1, unix.ICANON}, 52: {1, unix.XCASE}, 53: {1, unix.ECHO},
	54: {1, unix.ECHOE}, 55: {1, unix.ECHOK}, 56: {1, unix.ECHONL}, 57: {1, unix.NOFLSH},
	58: {1, unix.TOSTOP}, 59: {1, unix.IEXTEN}, 60: {1, unix.ECHOCTL}, 61: {1, unix.ECHOKE},
	62: {1, unix.PENDIN},
	70: {2, unix.OPOST}, 71: {2, unix.OLCUC}, 72: {2, unix.ONLCR}, 73: {2, unix.OCRNL},
	74: {2, unix.ONOCR}, 75: {2, unix.ONLRET},
	90: {3, unix.CS7}, 91: {3, unix.CS8}, 92: {3, unix.PARENB}, 93: {3, unix.PARODD},
}

// applyModes sets the client's terminal modes on the slave side of the pty.
func applyModes(tty *os.File, modes []payload.Mode) error {
	if len(modes) == 0 {
		return nil
	}
	raw, err := tty.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = raw.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		for _, m := range modes {
			if idx, ok := ccModes[m.Opcode]; ok {
				t.Cc[idx] = uint8(m.Value)
				continue
			}
			fm, ok := flagModes[m.Opcode]
			if !ok {
				continue // speeds and modes Linux lacks
			}
			ptr := [...]*uint32{&t.Iflag, &t.Lflag, &t.Oflag, &t.Cflag}[fm.field]
			if fm.field == 3 && (fm.bit == unix.CS7 || fm.bit == unix.CS8) {
				if m.Value != 0 {
					*ptr = (*ptr &^ unix.CSIZE) | fm.bit
				}
				continue
			}
			if m.Value != 0 {
				*ptr |= fm.bit
			} else {
				*ptr &^= fm.bit
			}
		}
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err != nil {
		return err
	}
	return ierr
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

func signalByName(name string) (syscall.Signal, bool) {
	s, ok := signals[name]
	return s, ok
}

// signalName is the RFC 4254 name of sig, or OpenSSH's "NAME@openssh.com" form for others.
func signalName(sig syscall.Signal) string {
	for n, s := range signals {
		if s == sig {
			return n
		}
	}
	if n := unix.SignalName(sig); len(n) > 3 {
		return n[3:] + "@openssh.com"
	}
	return "UNKNOWN@openssh.com"
}
