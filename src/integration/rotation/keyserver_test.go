package rotation_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// keyServer presents host keys on 127.0.0.1 and lets nobody in: enough for ssh-keyscan.
type keyServer struct {
	Addr string
	ln   net.Listener
	wg   sync.WaitGroup
}

func startKeyServer(hostKeys ...ssh.Signer) *keyServer {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, errors.New("nobody gets in")
		},
	}
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &keyServer{Addr: ln.Addr().String(), ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
				if sc, chans, reqs, err := ssh.NewServerConn(nc, cfg); err == nil {
					go ssh.DiscardRequests(reqs)
					for nch := range chans {
						_ = nch.Reject(ssh.Prohibited, "no")
					}
					_ = sc.Close()
				}
			}()
		}
	}()
	DeferCleanup(s.Close)
	return s
}

// Close stops the listener; open handshakes end at their deadline or when the peer leaves.
func (s *keyServer) Close() {
	_ = s.ln.Close()
	s.wg.Wait()
}

// verify runs scripts/verify-host-key and returns its exit code and combined output.
func verify(args ...string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, verifyHostKey, args...)
	cmd.Env = append(cmd.Environ(), "VERIFY_HOST_KEY_TIMEOUT=5")
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		Expect(errors.As(err, &ee)).To(BeTrue(), "running verify-host-key: %v", err)
		code = ee.ExitCode()
	}
	return code, strings.TrimSpace(out.String())
}
