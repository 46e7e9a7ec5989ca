// Command ssh-proxy is a placeholder until its issue lands: it parses flags and answers -version only.
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
	fmt.Fprintln(os.Stderr, "ssh-proxy: not implemented yet")
	os.Exit(1)
}
