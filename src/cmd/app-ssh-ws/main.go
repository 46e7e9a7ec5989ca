// Command app-ssh-ws carries an SSH connection over WebSocket to an ssh-proxy that serves
// Cloud Foundry RFC-0029 ("CF SSH over WebSockets"). It is meant as OpenSSH's ProxyCommand:
//
//	ssh -o ProxyCommand='app-ssh-ws wss://ssh.SYSTEM_DOMAIN' cf:APP-GUID/0@ssh.SYSTEM_DOMAIN
//	app-ssh-ws [--ca-cert FILE] [--timeout 30s] wss://HOST[/PATH]
//
// It honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY. Exit status: 0 when the connection ended
// normally, 1 with one line on stderr naming the URL and the cause otherwise, 2 for usage errors.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/app-ssh/app-ssh/internal/version"
	"github.com/app-ssh/app-ssh/internal/wsclient"
)

func main() {
	os.Exit(run(os.Args[1:], wsclient.Stdin(os.Stdin), os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("app-ssh-ws", flag.ContinueOnError)
	fs.SetOutput(stderr)
	caCert := fs.String("ca-cert", "", "PEM file of the CA(s) to trust for the server certificate (default: the system roots)")
	timeout := fs.Duration("timeout", wsclient.DefaultDialTimeout, "bound on connecting, the TLS handshake and the WebSocket upgrade")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: app-ssh-ws [--ca-cert FILE] [--timeout 30s] wss://ssh.SYSTEM_DOMAIN")
		fs.PrintDefaults()
	}
	// Flags may come before or after the URL.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.Version)
		return 0
	}
	if len(positional) != 1 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	err := wsclient.Run(ctx, wsclient.Options{URL: positional[0], CACertFile: *caCert, DialTimeout: *timeout}, stdin, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "app-ssh-ws: %v\n", err)
		return 1
	}
	return 0
}
