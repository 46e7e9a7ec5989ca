// Package tcppeer holds TCP servers that integration suites put behind forwarded channels.
package tcppeer

import (
	"io"
	"net"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // a Ginkgo helper
	. "github.com/onsi/gomega"    //nolint:revive // a Ginkgo helper
)

// AnswerAndClose serves 127.0.0.1 (the container's side too, on this machine): every connection
// gets reply, then the server closes it, as a database dropping an idle client does. It returns
// the port; the server stops when the spec ends.
func AnswerAndClose(reply string) int {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
	DeferCleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).Port
}
