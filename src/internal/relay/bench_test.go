package relay_test

// Benchmarks of the relay's data path on loopback TCP: an SSH client writes to (or reads from) a
// session on an in-process backend, through an in-process proxy that runs relay.Relay, or
// directly for comparison. Run with, for example:
//
//	go test ./internal/relay -run '^$' -bench . -benchmem -cpuprofile /tmp/relay.cpu

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
)

const benchChunk = 32 << 10

var benchCiphers = []string{"aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"}

// benchServer is an SSH server on 127.0.0.1 that runs handle for every connection; Close stops
// the listener and every connection and waits for their goroutines.
type benchServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startBenchServer(b *testing.B, handle func(net.Conn)) *benchServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() {
				defer func() {
					c.Close()
					s.mu.Lock()
					delete(s.conns, c)
					s.mu.Unlock()
				}()
				handle(c)
			})
		}
	})
	b.Cleanup(s.Close)
	return s
}

func (s *benchServer) Addr() string { return s.ln.Addr().String() }

func (s *benchServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func benchKey(b *testing.B) (ssh.Signer, string) {
	b.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		b.Fatal(err)
	}
	return signer, string(pem.EncodeToMemory(block))
}

// startBenchBackend serves sessions whose exec command is "sink" (read stdin to EOF) or
// "source N" (write N bytes), each answered with exit-status 0.
func startBenchBackend(b *testing.B, cipher string) (addr string, host ssh.Signer, clientPEM string) {
	host, _ = benchKey(b)
	client, clientPEM := benchKey(b)
	want := string(client.PublicKey().Marshal())
	cfg := &ssh.ServerConfig{
		Config: ssh.Config{Ciphers: []string{cipher}},
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if string(key.Marshal()) != want {
				return nil, fmt.Errorf("unknown key")
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(host)
	srv := startBenchServer(b, func(c net.Conn) {
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		defer sc.Close()
		go ssh.DiscardRequests(reqs)
		var wg sync.WaitGroup
		defer wg.Wait()
		for nc := range chans {
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() { benchSession(ch, creqs) })
		}
	})
	return srv.Addr(), host, clientPEM
}

func benchSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		cmd := string(req.Payload[4:])
		_ = req.Reply(true, nil)
		switch {
		case cmd == "sink":
			_, _ = io.Copy(io.Discard, ch)
		case strings.HasPrefix(cmd, "source "):
			n, _ := strconv.ParseInt(cmd[len("source "):], 10, 64)
			buf := make([]byte, benchChunk)
			for n > 0 {
				w, err := ch.Write(buf[:min(n, int64(len(buf)))])
				if err != nil {
					break
				}
				n -= int64(w)
			}
		}
		_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
		_ = ch.CloseWrite()
		go ssh.DiscardRequests(reqs)
		return
	}
}

// startBenchProxy relays every connection (no client authentication) to the backend.
func startBenchProxy(b *testing.B, cipher string, tgt target.Target) string {
	host, _ := benchKey(b)
	cfg := &ssh.ServerConfig{NoClientAuth: true, Config: ssh.Config{Ciphers: []string{cipher}}}
	cfg.AddHostKey(host)
	ctx, cancel := context.WithCancel(context.Background())
	srv := startBenchServer(b, func(c net.Conn) {
		sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		be, err := relay.Connect(cctx, tgt, nil)
		ccancel()
		if err != nil {
			sc.Close()
			return
		}
		relay.Relay(ctx, sc, chans, reqs, be)
	})
	b.Cleanup(cancel) // runs before the server's Close (cleanups run last-in first-out)
	return srv.Addr()
}

// benchPath returns the address a client dials and its auth: through a relaying proxy or
// straight to the backend.
func benchPath(b *testing.B, cipher string, viaProxy bool) (string, []ssh.AuthMethod) {
	backend, host, clientPEM := startBenchBackend(b, cipher)
	signer, err := ssh.ParsePrivateKey([]byte(clientPEM))
	if err != nil {
		b.Fatal(err)
	}
	if !viaProxy {
		return backend, []ssh.AuthMethod{ssh.PublicKeys(signer)}
	}
	tgt := target.Target{ProcessGUID: "bench", Address: backend, Signer: signer,
		HostKey: fingerprint.Compute(fingerprint.SHA256, host.PublicKey())}
	return startBenchProxy(b, cipher, tgt), nil
}

func benchDial(b *testing.B, addr, cipher string, methods []ssh.AuthMethod) *ssh.Client {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: "bench", Auth: methods, HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Config: ssh.Config{Ciphers: []string{cipher}}, Timeout: 10 * time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchTransfer(b *testing.B, viaProxy, upload bool) {
	for _, cipher := range benchCiphers {
		b.Run(strings.SplitN(cipher, "@", 2)[0], func(b *testing.B) {
			addr, methods := benchPath(b, cipher, viaProxy)
			client := benchDial(b, addr, cipher, methods)
			defer client.Close()
			s, err := client.NewSession()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			if upload {
				in, err := s.StdinPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start("sink"); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, benchChunk)
				b.ResetTimer()
				for range b.N {
					if _, err := in.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				in.Close()
			} else {
				out, err := s.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Start(fmt.Sprintf("source %d", int64(b.N)*benchChunk)); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				n, err := io.Copy(io.Discard, out)
				if err != nil || n != int64(b.N)*benchChunk {
					b.Fatalf("read %d of %d bytes: %v", n, int64(b.N)*benchChunk, err)
				}
			}
			if err := s.Wait(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
		})
	}
}

func BenchmarkUploadViaRelay(b *testing.B)   { benchTransfer(b, true, true) }
func BenchmarkUploadDirect(b *testing.B)     { benchTransfer(b, false, true) }
func BenchmarkDownloadViaRelay(b *testing.B) { benchTransfer(b, true, false) }
func BenchmarkDownloadDirect(b *testing.B)   { benchTransfer(b, false, false) }

// BenchmarkSessionSetupViaRelay: connect, open a session, run a command and close, through the
// relay (sequentially).
func BenchmarkSessionSetupViaRelay(b *testing.B) {
	cipher := benchCiphers[0]
	addr, methods := benchPath(b, cipher, true)
	b.ReportAllocs()
	for b.Loop() {
		client := benchDial(b, addr, cipher, methods)
		s, err := client.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Run("source 1"); err != nil {
			b.Fatal(err)
		}
		client.Close()
	}
}
