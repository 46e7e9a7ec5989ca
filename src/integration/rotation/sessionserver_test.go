package rotation_test

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/hostkeys"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// sessionServer stands in for the proxy until it is wired: it presents the rendered host keys,
// announces them with hostkeys.Announcer, lets one user key in and answers `exec` with exit 0.
// The command "wait-for-proof" first waits (at most 10s) until the connection's
// hostkeys-prove request was answered, standing for a command that runs a moment: OpenSSH's
// client exits without waiting for a pending proof.
type sessionServer struct {
	Addr  string
	ln    net.Listener
	cfg   *ssh.ServerConfig
	ann   *hostkeys.Announcer
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startSessionServer(present, next []ssh.Signer, user ssh.PublicKey) *sessionServer {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == string(user.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	for _, s := range present {
		cfg.AddHostKey(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &sessionServer{Addr: ln.Addr().String(), ln: ln, cfg: cfg, ann: hostkeys.New(present, next), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go s.handle(nc)
		}
	}()
	DeferCleanup(s.Close)
	return s
}

func (s *sessionServer) handle(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
	}()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	_ = s.ann.Announce(sc)
	proved := make(chan struct{})
	var once sync.Once
	var inner sync.WaitGroup
	inner.Add(1)
	go func() {
		defer inner.Done()
		for req := range reqs {
			if s.ann.HandleRequest(sc, req) {
				if req.Type == hostkeys.RequestProve {
					once.Do(func() { close(proved) })
				}
				continue
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		inner.Add(1)
		go func() {
			defer inner.Done()
			for r := range chReqs {
				if r.Type != "exec" {
					if r.WantReply {
						_ = r.Reply(r.Type == "env", nil)
					}
					continue
				}
				_ = r.Reply(true, nil)
				var cmd struct{ Command string }
				if ssh.Unmarshal(r.Payload, &cmd) == nil && cmd.Command == "wait-for-proof" {
					select {
					case <-proved:
					case <-time.After(10 * time.Second):
					}
				}
				_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
				_ = ch.Close()
			}
			_ = ch.Close()
		}()
	}
	_ = sc.Close()
	inner.Wait()
}

func (s *sessionServer) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
