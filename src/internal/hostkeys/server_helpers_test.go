package hostkeys_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/hostkeys"

	. "github.com/onsi/gomega"
)

func newEd25519() ssh.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	keyed[string(s.PublicKey().Marshal())] = priv
	return s
}

func newRSA() ssh.Signer {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	keyed[string(s.PublicKey().Marshal())] = priv
	return s
}

// testServer is a minimal SSH server on 127.0.0.1: public-key auth for one user key, sessions
// that accept exec/shell and exit 0, and the host-key announcer under test.
type testServer struct {
	Addr   string
	Proves atomic.Int32 // prove requests received
	Sent   atomic.Int32 // announcements sent

	ln     net.Listener
	cfg    *ssh.ServerConfig
	ann    *hostkeys.Announcer
	hide   bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func startServer(present []ssh.Signer, ann *hostkeys.Announcer, user ssh.PublicKey) *testServer {
	return startServerOpts(present, ann, user, false)
}

// plainConn hides everything but the ssh.Conn interface, negotiated algorithms included.
type plainConn struct{ ssh.Conn }

func startServerOpts(present []ssh.Signer, ann *hostkeys.Announcer, user ssh.PublicKey, hideAlgorithms bool) *testServer {
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
	s := &testServer{Addr: ln.Addr().String(), ln: ln, cfg: cfg, ann: ann, hide: hideAlgorithms, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *testServer) Port() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return port
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(nc)
	}
}

func (s *testServer) handle(nc net.Conn) {
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
	if s.ann != nil {
		if err := s.ann.Announce(sc); err == nil {
			s.Sent.Add(1)
		}
	}
	// proved closes once this connection's first prove request has been answered
	proved := make(chan struct{})
	var proveOnce sync.Once
	var inner sync.WaitGroup
	inner.Add(1)
	go func() {
		defer inner.Done()
		for req := range reqs {
			if req.Type == hostkeys.RequestProve {
				s.Proves.Add(1)
			}
			var conn ssh.Conn = sc
			if s.hide {
				conn = plainConn{sc}
			}
			if s.ann != nil && s.ann.HandleRequest(conn, req) {
				if req.Type == hostkeys.RequestProve {
					proveOnce.Do(func() { close(proved) })
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
				switch r.Type {
				case "exec", "shell":
					_ = r.Reply(true, nil)
					// "wait-for-proof" stands for a command that runs a moment: OpenSSH's
					// client does not wait for a pending hostkeys-prove reply before it exits,
					// so a command that ends at once can race the proof (as with any server).
					var cmd struct{ Command string }
					if r.Type == "exec" && ssh.Unmarshal(r.Payload, &cmd) == nil && cmd.Command == "wait-for-proof" {
						select {
						case <-proved:
						case <-time.After(10 * time.Second):
						}
					}
					_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
					_ = ch.Close()
				default:
					if r.WantReply {
						_ = r.Reply(r.Type == "env" || r.Type == "pty-req", nil)
					}
				}
			}
			_ = ch.Close()
		}()
	}
	_ = sc.Close()
	inner.Wait()
}

// Close stops accepting, closes every open connection and waits for all goroutines.
func (s *testServer) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}
