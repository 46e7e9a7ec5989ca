// Command sshd is the SSH daemon Cloud Foundry starts in app containers (a drop-in for
// diego-sshd: same flags, same defaults) and the sshd BOSH job runs with -config.
package main

import (
	"os"

	"github.com/app-ssh/app-ssh/internal/sshdcli"
)

func main() {
	os.Exit(sshdcli.Main(os.Args, os.Stdout, os.Stderr))
}
