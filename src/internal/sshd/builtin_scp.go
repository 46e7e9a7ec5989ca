package sshd

import (
	"context"
	"io"

	"github.com/app-ssh/app-ssh/internal/scp"
)

// SCPBuiltin serves "scp -t" / "scp -f" invocations natively, so containers without an scp
// binary still work with `scp -O`. Anything else goes to the shell.
func SCPBuiltin(cmdline string) (BuiltinRunner, bool) {
	c, err := scp.Parse(cmdline)
	if err != nil {
		return nil, false
	}
	return func(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, workDir string) int {
		return c.Run(ctx, stdin, stdout, stderr, workDir)
	}, true
}
