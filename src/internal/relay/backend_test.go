package relay_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
)

// fakeSSHD is an in-process sshd for the relay tests: it accepts one authorized key, runs
// "exec" requests from a tiny command set, echoes data, answers a global request and opens
// a channel back to the client on request.
type fakeSSHD struct {
	ln        net.Listener
	hostKey   ssh.Signer
	clientKey ssh.Signer // the key the proxy must present
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     []net.Conn
	users     []string
	// release, when set, is what a "held-global" request waits for before its reply.
	release chan struct{}
}

func newKey() (ssh.Signer, string) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(priv)
	Expect(err).NotTo(HaveOccurred())
	b, err := ssh.MarshalPrivateKey(priv, "")
	Expect(err).NotTo(HaveOccurred())
	return s, string(pem.EncodeToMemory(b))
}

func startFakeSSHD() *fakeSSHD {
	host, _ := newKey()
	client, _ := newKey()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	f := &fakeSSHD{ln: ln, hostKey: host, clientKey: client, release: make(chan struct{})}
	authorized := client.PublicKey().Marshal()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) != string(authorized) {
				return nil, fmt.Errorf("unknown key")
			}
			f.mu.Lock()
			f.users = append(f.users, meta.User())
			f.mu.Unlock()
			return nil, nil
		},
	}
	cfg.AddHostKey(host)
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Go(func() { f.serve(c, cfg) })
		}
	})
	return f
}

func (f *fakeSSHD) Addr() string { return f.ln.Addr().String() }

func (f *fakeSSHD) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakeSSHD) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	f.wg.Go(func() {
		for req := range reqs {
			switch req.Type {
			case "echo-global":
				_ = req.Reply(true, append([]byte("echo:"), req.Payload...))
			case "held-global":
				// Answered on its own goroutine once released. A relay that sent the next
				// global request before this reply would get the replies paired wrongly.
				f.wg.Go(func() {
					<-f.release
					_ = req.Reply(true, []byte("held"))
				})
			case "announce-keys":
				// A backend announcing its own host keys, as OpenSSH's sshd does.
				_, _, _ = sc.SendRequest("hostkeys-00@openssh.com", false, []byte("backend-keys"))
				_, _, _ = sc.SendRequest("after-announce", false, nil)
				_ = req.Reply(true, nil)
			case "open-back":
				_ = req.Reply(true, nil)
				f.wg.Go(func() {
					ch, creqs, err := sc.OpenChannel("back-channel", []byte("extra"))
					if err != nil {
						return
					}
					go ssh.DiscardRequests(creqs)
					_, _ = ch.Write([]byte("from the backend"))
					_ = ch.CloseWrite()
					_, _ = io.Copy(io.Discard, ch)
					ch.Close()
				})
			default:
				_ = req.Reply(false, nil)
			}
		}
	})
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions here: "+nc.ChannelType())
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		f.wg.Go(func() { session(ch, creqs) })
	}
}

func session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		n := binary.BigEndian.Uint32(req.Payload)
		cmd := string(req.Payload[4 : 4+n])
		_ = req.Reply(true, nil)
		status := uint32(0)
		switch {
		case strings.HasPrefix(cmd, "echo "):
			_, _ = ch.Write([]byte(cmd[5:] + "\n"))
		case strings.HasPrefix(cmd, "fail "):
			_, _ = ch.Stderr().Write([]byte("failing\n"))
			_, _ = fmt.Sscan(cmd[5:], &status)
		case cmd == "cat":
			_, _ = io.Copy(ch, ch)
		case cmd == "sleep":
			_, _ = io.Copy(io.Discard, ch)
		}
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		_ = ch.CloseWrite()
		return
	}
}
