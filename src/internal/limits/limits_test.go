package limits

import (
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Preauth", func() {
	type conn struct {
		e    *Conn
		shed bool
	}
	var p *Preauth
	add := func() *conn {
		c := &conn{}
		c.e = p.Add(func() { c.shed = true })
		return c
	}
	BeforeEach(func() { p = NewPreauth(3) })

	It("admits every arrival and, over the limit, sheds the oldest connection at the earliest stage", func() {
		a, b, c := add(), add(), add()
		a.e.Advance(KexInit)
		c.e.Advance(Identified)
		Expect(p.Len()).To(Equal(3))
		// Over the limit: b is the only one still at Connected.
		d := add()
		Expect([]bool{a.shed, b.shed, c.shed, d.shed}).To(Equal([]bool{false, true, false, false}))
		Expect(p.Len()).To(Equal(3))
		// Next: d (Connected, the newest but the only one that has not spoken).
		e := add()
		Expect(d.shed).To(BeTrue())
		Expect([]bool{a.shed, c.shed, e.shed}).To(Equal([]bool{false, false, false}))
		// e and then the Identified c go before the KexInit a.
		e.e.Advance(AuthAttempted)
		f := add()
		Expect(c.shed).To(BeTrue())
		Expect([]bool{a.shed, e.shed, f.shed}).To(Equal([]bool{false, false, false}))
	})

	It("orders a stage by the time connections reached it", func() {
		a, b, c := add(), add(), add()
		b.e.Advance(Identified)
		a.e.Advance(Identified) // a reached Identified after b
		c.e.Advance(AuthAttempted)
		d := add()
		Expect([]bool{a.shed, b.shed, c.shed, d.shed}).To(Equal([]bool{false, true, false, false}), "b has waited at Identified longest")
		e := add()
		Expect([]bool{a.shed, c.shed, d.shed, e.shed}).To(Equal([]bool{false, false, true, false}), "Connected goes before Identified")
		Expect(p.Len()).To(Equal(3))
	})

	It("forgets finished and authenticated connections, and never moves one back", func() {
		a, b, c := add(), add(), add()
		a.e.Advance(AuthAttempted)
		a.e.Advance(Identified) // no effect
		b.e.Done()
		b.e.Done()
		Expect(p.Len()).To(Equal(2))
		d := add()
		Expect([]bool{a.shed, c.shed, d.shed}).To(Equal([]bool{false, false, false}))
		e := add()
		Expect(c.shed).To(BeTrue())
		Expect([]bool{a.shed, d.shed, e.shed}).To(Equal([]bool{false, false, false}))
		c.e.Done() // the shed connection's handler ends: nothing changes
		Expect(p.Len()).To(Equal(3))
	})

	It("is a no-op when nil", func() {
		var none *Preauth
		e := none.Add(func() { Fail("shed called") })
		e.Advance(KexInit)
		e.Done()
		Expect(none.Len()).To(Equal(0))
	})

	It("stays consistent under concurrent use", func() {
		p = NewPreauth(50)
		done := make(chan struct{})
		for g := range 8 {
			go func() {
				defer GinkgoRecover()
				for i := range 2000 {
					e := p.Add(nil)
					e.Advance(Stage((g + i) % int(numStages)))
					if i%3 == 0 {
						e.Done()
					}
				}
				done <- struct{}{}
			}()
		}
		for range 8 {
			<-done
		}
		Expect(p.Len()).To(BeNumerically("<=", 50))
		n := 0
		for s := range p.stages {
			for e := p.stages[s].head; e != nil; e = e.next {
				n++
			}
		}
		Expect(n).To(Equal(p.Len()))
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
		p = NewPenalties(PenaltyConfig{AuthFail: 5 * time.Second,
			Min: 15 * time.Second, Max: 30 * time.Second, MaxSources: 2,
			Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		p.now = func() time.Time { return now }
	})

	It("refuses a source only once its accumulated penalty reaches min, until it runs out", func() {
		p.Penalise(a)
		p.Penalise(a)
		Expect(p.Refused(a)).To(BeFalse())
		p.Penalise(a) // 15s accumulated
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
			p.Penalise(a)
		}
		now = now.Add(29 * time.Second)
		Expect(p.Refused(a)).To(BeTrue())
		now = now.Add(time.Second)
		Expect(p.Refused(a)).To(BeFalse())
	})

	It("never penalises exempt sources, including IPv4-mapped forms", func() {
		x := netip.MustParseAddr("10.1.2.3")
		for range 10 {
			p.Penalise(x)
			p.Penalise(netip.MustParseAddr("::ffff:10.1.2.3"))
		}
		Expect(p.Refused(x)).To(BeFalse())
		Expect(p.Len()).To(Equal(0))
	})

	It("keeps the table bounded and lets overflowed sources in (permissive)", func() {
		c := netip.MustParseAddr("192.0.2.9")
		p.Penalise(a)
		p.Penalise(b)
		for range 3 {
			p.Penalise(c)
		}
		Expect(p.Len()).To(Equal(2))
		Expect(p.Refused(c)).To(BeFalse())
		// Once the old entries expire, a sweep makes room.
		now = now.Add(6 * time.Second)
		for range 3 {
			p.Penalise(c)
		}
		Expect(p.Refused(c)).To(BeTrue())
		Expect(p.Len()).To(BeNumerically("<=", 2))
	})

	It("refuses untracked sources while overflowing with deny-all", func() {
		p = NewPenalties(PenaltyConfig{AuthFail: 10 * time.Second, Min: 15 * time.Second, MaxSources: 1, DenyAllOnOverflow: true})
		p.now = func() time.Time { return now }
		p.Penalise(a)
		p.Penalise(b)
		Expect(p.Refused(netip.MustParseAddr("192.0.2.50"))).To(BeTrue())
		now = now.Add(11 * time.Second)
		// The tracked penalty has run out: a sweep makes room and the overflow ends.
		Expect(p.Refused(netip.MustParseAddr("192.0.2.50"))).To(BeFalse())
	})
})
