package rotation_test

import (
	"net"
	"strconv"

	. "github.com/onsi/gomega"
)

func itoa(i int) string { return strconv.Itoa(i) }

// closedPort returns a 127.0.0.1 port that nothing listens on (it was just released).
func closedPort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p := l.Addr().(*net.TCPAddr).Port
	Expect(l.Close()).To(Succeed())
	return p
}

func netSplit(addr string) (string, string, error) { return net.SplitHostPort(addr) }
