package sshdcli

import "github.com/app-ssh/app-ssh/internal/sshd"

// builtin serves exec commands the daemon implements itself (scp -t / scp -f).
var builtin sshd.Builtin = sshd.SCPBuiltin
