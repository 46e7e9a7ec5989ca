package sshd

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/config/sshdconfig"
	"github.com/app-ssh/app-ssh/internal/logging"
	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

// maxForwards bounds the -R listeners one connection may hold.
const maxForwards = 32

// directTCPIP serves a -L channel: dial from inside the container, then relay.
func (c *conn) directTCPIP(nch ssh.NewChannel) {
	d, err := payload.ParseDirectTCPIP(nch.ExtraData())
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	addr := net.JoinHostPort(d.Host, strconv.Itoa(int(d.Port)))
	target := logging.Cap(addr)
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.DialTimeout)
	var dialer net.Dialer
	tcp, err := dialer.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		c.log.Info("direct-tcpip-dial-failed", "target", target, "error", logging.CapError(err))
		_ = nch.Reject(ssh.ConnectionFailed, connectFailure(err))
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		tcp.Close()
		return
	}
	c.log.Info("direct-tcpip-opened", "target", target)
	c.act.touch()
	c.relay(ch, reqs, tcp)
	c.log.Info("direct-tcpip-closed", "target", target)
}

// connectFailure words a failed dial as OpenSSH's sshd does in its open-failure message (the
// client prints "open failed: connect failed: <this>"): the system's description of the error
// ("Connection refused", "No route to host"), the resolver's for an unknown name.
func connectFailure(err error) string {
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "Name or service not known"
	case errors.As(err, &dnsErr):
		return "Temporary failure in name resolution"
	case errors.As(err, &errno):
		return strerror(errno)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return strerror(syscall.ETIMEDOUT)
	}
	return "connect failed"
}

// strerror is the C library's description of errno ("Connection refused"); Go's are the same
// words in lower case.
func strerror(errno syscall.Errno) string {
	msg := errno.Error()
	if msg == "" {
		return msg
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// relay copies between a channel and a TCP connection with half-close in both directions and
// returns when both directions ended or the connection's context is done.
func (c *conn) relay(ch ssh.Channel, reqs <-chan *ssh.Request, tcp net.Conn) {
	// Channel requests are refused until the channel is gone; that is not a direction of the
	// relay, so it does not count towards "both directions ended" (waiting for it would wait for
	// the client's CLOSE, which clients such as ssh -W only send after ours).
	discarded := make(chan struct{})
	go func() {
		defer close(discarded)
		ssh.DiscardRequests(reqs)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = copyBuf(tcp, activeReader{r: ch, act: c.act})
		if tc, ok := tcp.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			tcp.Close()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = copyBuf(activeWriter{w: ch, act: c.act}, tcp)
		_ = ch.CloseWrite()
	}()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Both copies ended, or the SSH connection went away: close both sides, which ends any
	// copy still running, then wait for them.
	select {
	case <-done:
	case <-c.ctx.Done():
	}
	tcp.Close()
	ch.Close()
	<-done
	<-discarded
}

func forwardKey(addr string, port uint32) string {
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

// bindHost is the host a -R listener binds for the address the client asked for, following
// OpenSSH's sshd GatewayPorts: with "no" (the default) only loopback, so that a forward never
// exposes a port to the container network unless the operator allowed it; with "yes" all
// interfaces; with "clientspecified" what the client named ("" and "*" for all interfaces).
func bindHost(addr, gatewayPorts string) string {
	switch gatewayPorts {
	case sshdconfig.GatewayPortsYes:
		return ""
	case sshdconfig.GatewayPortsClientSpecified:
		switch addr {
		case "", "*":
			return ""
		case "localhost":
			return "127.0.0.1"
		}
		return addr
	}
	if addr == "::1" {
		return addr
	}
	return "127.0.0.1"
}

// tcpipForward opens a -R listener inside the container and answers with the bound port.
func (c *conn) tcpipForward(req *ssh.Request) {
	reply := func(ok bool, p []byte) {
		if req.WantReply {
			_ = req.Reply(ok, p)
		}
	}
	f, err := payload.ParseTCPIPForward(req.Payload)
	if err != nil {
		reply(false, nil)
		return
	}
	c.mu.Lock()
	n := len(c.forwards)
	c.mu.Unlock()
	if n >= maxForwards || c.ctx.Err() != nil {
		reply(false, nil)
		return
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(c.ctx, "tcp", net.JoinHostPort(bindHost(f.Address, c.srv.opts.Config.GatewayPorts), strconv.Itoa(int(f.Port))))
	if err != nil {
		c.log.Info("tcpip-forward-listen-failed", "requested", logging.Cap(f.Address), "error", logging.CapError(err))
		reply(false, nil)
		return
	}
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	key := forwardKey(f.Address, port)
	c.mu.Lock()
	if _, dup := c.forwards[key]; dup || c.ctx.Err() != nil {
		c.mu.Unlock()
		ln.Close()
		reply(false, nil)
		return
	}
	c.forwards[key] = ln
	c.mu.Unlock()
	c.log.Info("tcpip-forward-listening", "requested", logging.Cap(f.Address), "address", ln.Addr().String())
	if f.Port == 0 {
		reply(true, payload.Uint32(port))
	} else {
		reply(true, nil)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.acceptForwards(ln, f.Address, port)
	}()
}

func (c *conn) acceptForwards(ln net.Listener, addr string, port uint32) {
	defer ln.Close()
	for {
		tcp, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				c.log.Info("tcpip-forward-accept-failed", "error", err.Error())
			}
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ra, _ := tcp.RemoteAddr().(*net.TCPAddr)
			var oh string
			var op uint32
			if ra != nil {
				oh, op = ra.IP.String(), uint32(ra.Port)
			}
			ch, reqs, err := c.sc.OpenChannel("forwarded-tcpip", payload.ForwardedTCPIP(addr, port, oh, op))
			if err != nil {
				tcp.Close()
				return
			}
			c.act.touch()
			c.relay(ch, reqs, tcp)
		}()
	}
}

func (c *conn) cancelTCPIPForward(req *ssh.Request) {
	f, err := payload.ParseTCPIPForward(req.Payload)
	ok := false
	if err == nil {
		c.mu.Lock()
		if ln, found := c.forwards[forwardKey(f.Address, f.Port)]; found {
			delete(c.forwards, forwardKey(f.Address, f.Port))
			ln.Close()
			ok = true
		}
		c.mu.Unlock()
	}
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
}

func (c *conn) closeForwards() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, ln := range c.forwards {
		ln.Close()
		delete(c.forwards, k)
	}
}
