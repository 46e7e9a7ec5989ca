package proxyproto

import (
	"io"
	"net"
	"net/netip"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	pp "github.com/pires/go-proxyproto"
)

const banner = "SSH-2.0-OpenSSH_9.6\r\n"

func v2(src, dst string, cmd pp.ProtocolVersionAndCommand) []byte {
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	h := pp.HeaderProxyFromAddrs(2, s, d)
	h.Command = cmd
	b, err := h.Format()
	Expect(err).NotTo(HaveOccurred())
	return b
}

var _ = Describe("Policy", func() {
	var p *Policy
	BeforeEach(func() {
		var err error
		p, err = NewPolicy([]string{"10.0.0.0/8", "192.0.2.10", "2001:db8::/32"})
		Expect(err).NotTo(HaveOccurred())
	})

	It("parses CIDRs and single addresses, and rejects anything else", func() {
		Expect(p.Allowed(netip.MustParseAddr("10.2.3.4"))).To(BeTrue())
		Expect(p.Allowed(netip.MustParseAddr("::ffff:10.2.3.4"))).To(BeTrue())
		Expect(p.Allowed(netip.MustParseAddr("192.0.2.10"))).To(BeTrue())
		Expect(p.Allowed(netip.MustParseAddr("192.0.2.11"))).To(BeFalse())
		Expect(p.Allowed(netip.MustParseAddr("2001:db8::1"))).To(BeTrue())
		_, err := NewPolicy([]string{"10.0.0.0/33"})
		Expect(err).To(HaveOccurred())
		_, err = NewPolicy([]string{"lb.example.com"})
		Expect(err).To(HaveOccurred())
		var nilPolicy *Policy
		Expect(nilPolicy.Allowed(netip.MustParseAddr("10.0.0.1"))).To(BeFalse())
	})

	It("takes the client address from a v1 header sent by an allowed peer and keeps the rest of the stream", func() {
		c, err := p.Wrap(newMemConn([]byte("PROXY TCP4 198.51.100.7 10.0.0.5 40000 2222\r\n"+banner), "10.1.1.1:5000"))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.RemoteAddr().String()).To(Equal("198.51.100.7:40000"))
		Expect(ClientAddressKnown(c)).To(BeTrue())
		rest, _ := io.ReadAll(c)
		Expect(string(rest)).To(Equal(banner))
	})

	It("takes the client address from a v2 header (IPv6 too)", func() {
		c, err := p.Wrap(newMemConn(append(v2("[2001:db8:1::9]:41000", "[2001:db8::5]:2222", pp.PROXY), banner...), "192.0.2.10:5000"))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.RemoteAddr().String()).To(Equal("[2001:db8:1::9]:41000"))
		Expect(ClientAddressKnown(c)).To(BeTrue())
		rest, _ := io.ReadAll(c)
		Expect(string(rest)).To(Equal(banner))
	})

	It("accepts a v2 LOCAL header and keeps the peer's address", func() {
		c, err := p.Wrap(newMemConn(append(v2("10.9.9.9:1", "10.0.0.5:2222", pp.LOCAL), banner...), "10.1.1.1:5000"))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.RemoteAddr().String()).To(Equal("10.1.1.1:5000"))
		Expect(ClientAddressKnown(c)).To(BeFalse(), "a LOCAL header carries no client address")
	})

	It("refuses an allowed peer without a header, and a header from anyone else", func() {
		_, err := p.Wrap(newMemConn([]byte(banner), "10.1.1.1:5000"))
		Expect(err).To(MatchError(ErrHeaderMissing))
		_, err = p.Wrap(newMemConn([]byte("PROXY TCP4 198.51.100.7 10.0.0.5 40000 2222\r\n"+banner), "203.0.113.1:5000"))
		Expect(err).To(MatchError(ErrHeaderNotAllowed))
		_, err = p.Wrap(newMemConn(append(v2("198.51.100.7:1", "10.0.0.5:2222", pp.PROXY), banner...), "203.0.113.1:5000"))
		Expect(err).To(MatchError(ErrHeaderNotAllowed))
	})

	It("serves other peers without a header as direct clients", func() {
		c, err := p.Wrap(newMemConn([]byte(banner), "203.0.113.1:5000"))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.RemoteAddr().String()).To(Equal("203.0.113.1:5000"))
		Expect(ClientAddressKnown(c)).To(BeFalse(), "no header: the peer may be a NAT")
		rest, _ := io.ReadAll(c)
		Expect(string(rest)).To(Equal(banner))
	})

	It("refuses malformed and non-TCP headers", func() {
		_, err := p.Wrap(newMemConn([]byte("PROXY TCP4 nonsense\r\n"+banner), "10.1.1.1:5000"))
		Expect(err).To(HaveOccurred())
		u, _ := net.ResolveUDPAddr("udp", "198.51.100.7:53")
		d, _ := net.ResolveUDPAddr("udp", "10.0.0.5:53")
		b, ferr := pp.HeaderProxyFromAddrs(2, u, d).Format()
		Expect(ferr).NotTo(HaveOccurred())
		_, err = p.Wrap(newMemConn(append(b, banner...), "10.1.1.1:5000"))
		Expect(err).To(MatchError(ContainSubstring("TCP")))
	})
})
