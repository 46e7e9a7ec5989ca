package relay

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/hostkeys"
)

// Options adjusts a relay.
type Options struct {
	// HandleClientRequest, when set, sees every global request from the client first; if it
	// returns true the request was answered and is not relayed (the proxy's own host-key
	// update protocol, for example).
	HandleClientRequest func(req *ssh.Request) bool
	// HandleChannelRequest, when set, sees every channel request before it is relayed, in
	// order, with the channel it arrived on (src) and the one it would be relayed to (dst).
	// Returning true means it answered (or relayed) the request itself. It runs on the
	// channel's request loop, so the replies on src stay in the order of the requests.
	HandleChannelRequest func(src, dst ssh.Channel, req *ssh.Request) bool
}

// Relay forwards everything between the client connection (with its channel and request
// streams) and the backend until either side ends; then it closes both and returns once every
// goroutine it started has finished. Cancelling ctx closes both sides.
//
// The backend's host-key update requests (hostkeys-00/-prove-00@openssh.com) are never passed
// to the client: the backend's keys are not the proxy's.
func Relay(ctx context.Context, client ssh.Conn, clientChans <-chan ssh.NewChannel, clientReqs <-chan *ssh.Request, backend *Backend) {
	RelayWith(ctx, client, clientChans, clientReqs, backend, Options{})
}

// RelayWith is Relay with options.
//
// Goroutines are what an idle relayed session costs, so each side's global requests and new
// channels share one goroutine (the caller's, for the client side): a side's request and channel
// streams both close when its connection ends, and that is when the other side is closed.
func RelayWith(ctx context.Context, client ssh.Conn, clientChans <-chan ssh.NewChannel, clientReqs <-chan *ssh.Request, backend *Backend, opts Options) {
	stop := context.AfterFunc(ctx, func() {
		client.Close()
		backend.Conn.Close()
	})
	defer stop()

	var wg sync.WaitGroup
	wg.Go(func() {
		forwardSide(&wg, client, backend.Chans, backend.Reqs, refuseHostKeyProtocol, opts.HandleChannelRequest)
		client.Close()
	})
	forwardSide(&wg, backend.Conn, clientChans, clientReqs, opts.HandleClientRequest, opts.HandleChannelRequest)
	backend.Conn.Close()
	wg.Wait()
}

// maxPendingGlobal bounds a side's global requests waiting for the other side's reply; at the
// bound the side's stream is not read until one is answered (backpressure, as with one reader).
const maxPendingGlobal = 16

// forwardSide relays one side's new channels and global requests to dst until the side's
// connection ends (x/crypto/ssh closes its channel stream, then its request stream, when the
// connection's read loop ends; nothing is delivered after that). A channel gets a twin on dst
// in a goroutine of its own (tracked by wg). Global requests are relayed in arrival order, each
// answered with dst's reply unless intercept (when set) handled it; a request waiting for its
// reply runs in a short-lived goroutine so that it never holds up new channels.
func forwardSide(wg *sync.WaitGroup, dst ssh.Conn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, intercept func(*ssh.Request) bool, chanReq func(src, dst ssh.Channel, req *ssh.Request) bool) {
	pending := make(chan struct{}, maxPendingGlobal)
	var prev chan struct{} // closed when the previous global request has been answered
	for {
		select {
		case nc, ok := <-chans:
			if !ok {
				return
			}
			wg.Go(func() { openTwin(wg, dst, nc, chanReq) })
		case req, ok := <-reqs:
			if !ok {
				return
			}
			// At the bound, wait for a reply, still taking new channels and noticing the end.
		acquire:
			for {
				select {
				case pending <- struct{}{}:
					break acquire
				case nc, ok := <-chans:
					if !ok {
						return
					}
					wg.Go(func() { openTwin(wg, dst, nc, chanReq) })
				}
			}
			after, done := prev, make(chan struct{})
			prev = done
			wg.Go(func() {
				defer func() { <-pending }()
				defer close(done)
				if after != nil {
					<-after
				}
				forwardGlobal(dst, req, intercept)
			})
		}
	}
}

// refuseHostKeyProtocol answers the backend's host-key update requests itself (refused).
func refuseHostKeyProtocol(req *ssh.Request) bool {
	if hostkeys.IsProtocolRequest(req.Type) {
		_ = req.Reply(false, nil)
		return true
	}
	return false
}

// forwardGlobal sends the global request to dst and answers it with dst's reply, unless
// intercept (when set) handled it.
func forwardGlobal(dst ssh.Conn, req *ssh.Request, intercept func(*ssh.Request) bool) {
	if intercept != nil && intercept(req) {
		return
	}
	ok, payload, err := dst.SendRequest(req.Type, req.WantReply, req.Payload)
	if err != nil {
		ok, payload = false, nil
	}
	_ = req.Reply(ok, payload)
}

func openTwin(wg *sync.WaitGroup, dst ssh.Conn, nc ssh.NewChannel, chanReq func(src, dst ssh.Channel, req *ssh.Request) bool) {
	out, outReqs, err := dst.OpenChannel(nc.ChannelType(), nc.ExtraData())
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			_ = nc.Reject(oce.Reason, oce.Message)
		} else {
			_ = nc.Reject(ssh.ConnectionFailed, "the other side of the proxy is gone")
		}
		return
	}
	in, inReqs, err := nc.Accept()
	if err != nil {
		out.Close()
		wg.Go(func() { ssh.DiscardRequests(outReqs) })
		return
	}
	pipe(wg, in, inReqs, out, outReqs, chanReq)
}

// pipe relays one channel pair. For each direction: data and stderr are copied until the
// source's EOF, then EOF is passed on; requests are forwarded with their replies; once the
// source has closed and its data is drained, the destination is closed — but only after any
// request that arrived on the destination has been answered (a backend that replies to "exec"
// and closes at once must not have the client see the close before the reply).
func pipe(wg *sync.WaitGroup, a ssh.Channel, aReqs <-chan *ssh.Request, b ssh.Channel, bReqs <-chan *ssh.Request, chanReq func(src, dst ssh.Channel, req *ssh.Request) bool) {
	aDrained := make(chan struct{})
	bDrained := make(chan struct{})
	var answeringA, answeringB sync.Mutex // held while answering a request that arrived on a (b)
	wg.Go(func() { copyHalf(b, a, aDrained) })
	wg.Go(func() { copyHalf(a, b, bDrained) })
	wg.Go(func() { forwardChannelRequests(a, b, aReqs, &answeringA, aDrained, &answeringB, chanReq) })
	forwardChannelRequests(b, a, bReqs, &answeringB, bDrained, &answeringA, chanReq)
}

func copyHalf(dst, src ssh.Channel, drained chan<- struct{}) {
	defer close(drained)
	var ext sync.WaitGroup
	ext.Go(func() { _, _ = copyData(dst.Stderr(), src.Stderr()) })
	_, _ = copyData(dst, src)
	ext.Wait()
	_ = dst.CloseWrite()
}

// forwardChannelRequests relays requests from src (reqs) to dst, answering each on src while
// holding answering. When src has closed and its data is drained, it closes dst once no request
// that arrived on dst is being answered (dstAnswering). A forwarder holding dstAnswering is at
// most waiting for a reply from src, which has closed, so it finishes promptly.
func forwardChannelRequests(src, dst ssh.Channel, reqs <-chan *ssh.Request, answering *sync.Mutex, srcDrained <-chan struct{}, dstAnswering *sync.Mutex, hook func(src, dst ssh.Channel, req *ssh.Request) bool) {
	for req := range reqs {
		answering.Lock()
		if hook != nil && hook(src, dst, req) {
			answering.Unlock()
			continue
		}
		ok, err := dst.SendRequest(req.Type, req.WantReply, req.Payload)
		if err != nil {
			ok = false
		}
		_ = req.Reply(ok, nil)
		answering.Unlock()
	}
	<-srcDrained
	dstAnswering.Lock()
	_ = dst.Close()
	dstAnswering.Unlock()
}
