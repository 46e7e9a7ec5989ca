// Command sshd is a placeholder until its issue lands: it parses flags and answers -version only.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/app-ssh/app-ssh/internal/version"
)

func main() {
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "sshd: not implemented yet")
	os.Exit(1)
}
