package limits

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Startups", func() {
	It("parses start:rate:full and the single-number form", func() {
		s, err := ParseStartups("10:30:100")
		Expect(err).NotTo(HaveOccurred())
		Expect([]int{s.Start, s.Rate, s.Full}).To(Equal([]int{10, 30, 100}))
		s, err = ParseStartups("7")
		Expect(err).NotTo(HaveOccurred())
		Expect([]int{s.Start, s.Rate, s.Full}).To(Equal([]int{7, 100, 7}))
		for _, bad := range []string{"", "a:b:c", "10:30", "10:130:100", "10:30:5", "0:30:100", "-1:30:100", "1:2:3:4"} {
			_, err := ParseStartups(bad)
			Expect(err).To(HaveOccurred(), bad)
		}
	})

	It("admits up to start, drops with rising probability, and everything at full", func() {
		s, _ := ParseStartups("3:50:5")
		draw := 0.0
		s.rand = func() float64 { return draw }
		for range 3 {
			Expect(s.Acquire()).To(BeTrue())
		}
		// At start (3 open) the drop probability is 50%.
		draw = 0.49
		Expect(s.Acquire()).To(BeFalse())
		draw = 0.5
		Expect(s.Acquire()).To(BeTrue())
		// 4 open: 50% + 50%*(1/2) = 75%.
		draw = 0.74
		Expect(s.Acquire()).To(BeFalse())
		draw = 0.76
		Expect(s.Acquire()).To(BeTrue())
		// Full: always dropped.
		draw = 0.999
		Expect(s.Acquire()).To(BeFalse())
		Expect(s.Current()).To(Equal(5))
		s.Release()
		Expect(s.Current()).To(Equal(4))
		Expect(s.Acquire()).To(BeTrue())
	})

	It("drops roughly rate% at start with the real random source", func() {
		s, _ := ParseStartups("1:30:1000")
		Expect(s.Acquire()).To(BeTrue())
		dropped := 0
		for range 2000 {
			if s.Acquire() {
				s.Release()
			} else {
				dropped++
			}
		}
		// p = 0.30 + 0.70*(1/999) ≈ 0.3007; 2000 draws: mean 601, sd ≈ 20.5.
		Expect(dropped).To(BeNumerically("~", 601, 120))
	})
})

var _ = Describe("Penalties", func() {
	var (
		p   *Penalties
		now time.Time
		a   = netip.MustParseAddr("192.0.2.7")
		b   = netip.MustParseAddr("192.0.2.8")
	)
	BeforeEach(func() {
		now = time.Unix(1_700_000_000, 0)
		p = NewPenalties(PenaltyConfig{AuthFail: 5 * time.Second, NoAuth: time.Second, GraceExceeded: 10 * time.Second,
			Min: 15 * time.Second, Max: 30 * time.Second, MaxSources: 2,
			Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		p.now = func() time.Time { return now }
	})

	It("refuses a source only once its accumulated penalty reaches min, until it runs out", func() {
		p.Penalise(a, AuthFail)
		p.Penalise(a, AuthFail)
		Expect(p.Refused(a)).To(BeFalse())
		p.Penalise(a, AuthFail) // 15s accumulated
		Expect(p.Refused(a)).To(BeTrue())
		Expect(p.Refused(b)).To(BeFalse())
		now = now.Add(14 * time.Second)
		Expect(p.Refused(a)).To(BeTrue())
		now = now.Add(time.Second)
		Expect(p.Refused(a)).To(BeFalse())
		Expect(p.Len()).To(Equal(0))
	})

	It("caps the penalty at max", func() {
		for range 20 {
			p.Penalise(a, GraceExceeded)
		}
		now = now.Add(29 * time.Second)
		Expect(p.Refused(a)).To(BeTrue())
		now = now.Add(time.Second)
		Expect(p.Refused(a)).To(BeFalse())
	})

	It("never penalises exempt sources, including IPv4-mapped forms", func() {
		x := netip.MustParseAddr("10.1.2.3")
		for range 10 {
			p.Penalise(x, GraceExceeded)
			p.Penalise(netip.MustParseAddr("::ffff:10.1.2.3"), GraceExceeded)
		}
		Expect(p.Refused(x)).To(BeFalse())
		Expect(p.Len()).To(Equal(0))
	})

	It("keeps the table bounded and lets overflowed sources in (permissive)", func() {
		c := netip.MustParseAddr("192.0.2.9")
		p.Penalise(a, GraceExceeded)
		p.Penalise(b, GraceExceeded)
		for range 3 {
			p.Penalise(c, GraceExceeded)
		}
		Expect(p.Len()).To(Equal(2))
		Expect(p.Refused(c)).To(BeFalse())
		// Once the old entries expire, a sweep makes room.
		now = now.Add(11 * time.Second)
		p.Penalise(c, GraceExceeded)
		p.Penalise(c, GraceExceeded)
		Expect(p.Refused(c)).To(BeTrue())
		Expect(p.Len()).To(BeNumerically("<=", 2))
	})

	It("refuses untracked sources while overflowing with deny-all", func() {
		p = NewPenalties(PenaltyConfig{GraceExceeded: 10 * time.Second, Min: 15 * time.Second, MaxSources: 1, DenyAllOnOverflow: true})
		p.now = func() time.Time { return now }
		p.Penalise(a, GraceExceeded)
		p.Penalise(b, GraceExceeded)
		Expect(p.Refused(netip.MustParseAddr("192.0.2.50"))).To(BeTrue())
		now = now.Add(11 * time.Second)
		// The tracked penalty has run out: a sweep makes room and the overflow ends.
		Expect(p.Refused(netip.MustParseAddr("192.0.2.50"))).To(BeFalse())
	})
})
