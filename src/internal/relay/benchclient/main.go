// Command benchclient is the load generator of scripts/bench (not shipped in the release): it
// holds many idle SSH sessions open, or measures how many sessions per second a server sets up.
//
//	benchclient idle -addr HOST:PORT -user U (-key FILE | -password-file FILE) -n 2000
//	    opens n connections, each with one session channel (no command), prints "ready N" and
//	    holds them until stdin closes or SIGINT/SIGTERM, then closes them all.
//	benchclient rate -addr HOST:PORT -user U (-key FILE | -password-file FILE) -c 16 -n 400
//	    runs n sessions ("true"), c at a time, each on a new connection; prints
//	    "sessions N seconds S per_second R".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchclient idle|rate -addr HOST:PORT -user U (-key FILE | -password-file FILE) ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "idle":
		err = idle(os.Args[2:])
	case "rate":
		err = rate(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (idle or rate)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchclient:", err)
		os.Exit(1)
	}
}

type common struct {
	addr, user, keyFile, passwordFile, cipher string
	timeout                                   time.Duration
	cfg                                       *ssh.ClientConfig
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "", "server host:port (127.0.0.1 only)")
	fs.StringVar(&c.user, "user", "", "SSH user name")
	fs.StringVar(&c.keyFile, "key", "", "private key file (public-key authentication)")
	fs.StringVar(&c.passwordFile, "password-file", "", "file holding the password")
	fs.StringVar(&c.cipher, "cipher", "aes128-gcm@openssh.com", "cipher")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline for each connection's setup")
}

func (c *common) setup() error {
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil || host != "127.0.0.1" {
		return fmt.Errorf("-addr: want 127.0.0.1:PORT, got %q", c.addr)
	}
	var methods []ssh.AuthMethod
	switch {
	case c.keyFile != "":
		b, err := os.ReadFile(c.keyFile)
		if err != nil {
			return err
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return fmt.Errorf("-key: %w", err)
		}
		methods = append(methods, ssh.PublicKeys(s))
	case c.passwordFile != "":
		b, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return err
		}
		methods = append(methods, ssh.Password(strings.TrimSpace(string(b))))
	default:
		return errors.New("-key or -password-file is required")
	}
	c.cfg = &ssh.ClientConfig{
		User: c.user, Auth: methods, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Config: ssh.Config{Ciphers: []string{c.cipher}},
	}
	return nil
}

// dial connects and authenticates within the timeout (and ctx).
func (c *common) dial(ctx context.Context) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.addr, c.cfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		conn.Close()
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

type held struct {
	client *ssh.Client
	sess   *ssh.Session
}

func idle(args []string) error {
	fs := flag.NewFlagSet("benchclient idle", flag.ContinueOnError)
	var c common
	c.register(fs)
	n := fs.Int("n", 100, "sessions to hold (at most 20000)")
	parallel := fs.Int("parallel", 16, "connections set up at a time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 20000 || *parallel < 1 || *parallel > 256 {
		return errors.New("-n must be 1..20000 and -parallel 1..256")
	}
	if err := c.setup(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	sessions := make([]held, *n)
	defer func() {
		for _, h := range sessions {
			if h.client != nil {
				h.client.Close()
			}
		}
	}()
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range *parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n || ctx.Err() != nil {
					return
				}
				cl, err := c.dial(ctx)
				if err == nil {
					var s *ssh.Session
					if s, err = cl.NewSession(); err == nil {
						sessions[i] = held{client: cl, sess: s}
						continue
					}
					cl.Close()
				}
				errOnce.Do(func() { firstErr = fmt.Errorf("session %d: %w", i, err) })
				next.Store(int64(*n)) // stop the other workers
				return
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Printf("ready %d\n", *n)
	// Hold until stdin closes or a signal arrives.
	stdinDone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinDone)
	}()
	select {
	case <-stdinDone:
	case <-ctx.Done():
	}
	return nil
}

func rate(args []string) error {
	fs := flag.NewFlagSet("benchclient rate", flag.ContinueOnError)
	var c common
	c.register(fs)
	n := fs.Int("n", 400, "sessions in total (at most 100000)")
	conc := fs.Int("c", 16, "sessions at a time (at most 256)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 100000 || *conc < 1 || *conc > 256 {
		return errors.New("-n must be 1..100000 and -c 1..256")
	}
	if err := c.setup(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var next, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for next.Add(1) <= int64(*n) && ctx.Err() == nil {
				if err := oneSession(ctx, &c); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d of %d sessions failed, first: %v", f, *n, firstErr.Load())
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Printf("sessions %d seconds %.3f per_second %.1f\n", *n, secs, float64(*n)/secs)
	return nil
}

func oneSession(ctx context.Context, c *common) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Run("true") }()
	select {
	case err := <-done:
		return err
	case <-time.After(c.timeout):
		cl.Close()
		<-done
		return errors.New("session did not finish in time")
	}
}
