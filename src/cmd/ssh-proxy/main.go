// Command ssh-proxy is the gateway `cf ssh` talks to: it authenticates users with UAA one-time
// codes (or the diego credentials), asks the Cloud Controller and the BBS where the app instance
// is, and relays the SSH session to the sshd in that container.
//
//	ssh-proxy -config FILE         run until SIGTERM/SIGINT
//	ssh-proxy -check-config FILE   exit 0 if FILE is valid, else print one line per problem, exit 2
//	ssh-proxy -version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/app-ssh/app-ssh/internal/config/proxyconfig"
	"github.com/app-ssh/app-ssh/internal/proxy"
	"github.com/app-ssh/app-ssh/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ssh-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "path to the ssh-proxy YAML config file")
	checkFile := fs.String("check-config", "", "validate this config file and exit (0 = valid, 2 = problems)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ssh-proxy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, version.Version)
		return 0
	case *checkFile != "":
		cfg, problems := loadConfig(*checkFile)
		if len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintln(stderr, p)
			}
			return 2
		}
		// Tolerated (the proxy starts), but worth the operator's attention.
		for _, w := range cfg.Warnings() {
			fmt.Fprintln(stderr, "warning: "+w)
		}
		fmt.Fprintf(stdout, "%s: ok\n", *checkFile)
		return 0
	case *configFile == "":
		fmt.Fprintln(stderr, "ssh-proxy: -config FILE is required")
		return 2
	}

	cfg, problems := loadConfig(*configFile)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, p)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := proxy.Run(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "ssh-proxy: %v\n", err)
		return 1
	}
	return 0
}

// loadConfig loads and validates; each problem is one line naming the key.
func loadConfig(path string) (*proxyconfig.Config, []string) {
	cfg, err := proxyconfig.Load(path)
	if err != nil {
		var out []string
		for _, l := range strings.Split(err.Error(), "\n") {
			out = append(out, path+": "+l)
		}
		return nil, out
	}
	var out []string
	for _, e := range cfg.Validate() {
		out = append(out, e.Error())
	}
	return cfg, out
}
