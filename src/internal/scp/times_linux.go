package scp

import (
	"os"
	"syscall"
)

// accessTime returns the file's access time in Unix seconds.
func accessTime(st os.FileInfo) int64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Atim.Sec
	}
	return st.ModTime().Unix()
}
