// Command scpserve is a test helper: it serves the scp protocol of package
// scp on its stdin/stdout. It is started either directly by a test (argument:
// the remote command) or by the OpenSSH scp client through "scp -S scpserve",
// in which case the remote command is the last of ssh-style arguments.
//
// Environment: SCPSERVE_WORKDIR is the work directory (default: the current
// directory); SCPSERVE_LOG, if set, names a file that receives each command
// line served, one per line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/app-ssh/app-ssh/internal/scp"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scpserve [ssh options...] COMMAND")
		os.Exit(2)
	}
	cmdline := os.Args[len(os.Args)-1]
	if logPath := os.Getenv("SCPSERVE_LOG"); logPath != "" {
		if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(f, cmdline)
			_ = f.Close()
		}
	}
	cmd, err := scp.Parse(cmdline)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scpserve:", err)
		if errors.Is(err, scp.ErrNotSCP) {
			os.Exit(127)
		}
		os.Exit(1)
	}
	workDir := os.Getenv("SCPSERVE_WORKDIR")
	if workDir == "" {
		if workDir, err = os.Getwd(); err != nil {
			fmt.Fprintln(os.Stderr, "scpserve:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Run(ctx, os.Stdin, os.Stdout, os.Stderr, workDir)
	stop()
	os.Exit(code)
}
