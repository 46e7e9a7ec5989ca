// Package limits holds the ssh-proxy's pre-authentication defences: OpenSSH-style MaxStartups
// (random early drop of unauthenticated connections) and PerSourcePenalties (sources that fail
// authentication or stall until the login grace time are refused for a while).
package limits

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
)

// Startups is OpenSSH's MaxStartups start:rate:full. Below Start unauthenticated connections
// every new one is admitted; from Start on, a new one is dropped with probability Rate% rising
// linearly to 100% at Full.
type Startups struct {
	Start, Rate, Full int

	mu   sync.Mutex
	n    int
	rand func() float64 // [0,1); tests may replace it
}

// ParseStartups reads "start:rate:full" or a plain "n" (= n:100:n, OpenSSH's meaning).
func ParseStartups(s string) (*Startups, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not start:rate:full with non-negative integers", s)
		}
		nums[i] = n
	}
	var st Startups
	switch len(nums) {
	case 1:
		st = Startups{Start: nums[0], Rate: 100, Full: nums[0]}
	case 3:
		st = Startups{Start: nums[0], Rate: nums[1], Full: nums[2]}
	default:
		return nil, fmt.Errorf("%q is not start:rate:full", s)
	}
	switch {
	case st.Start < 1:
		return nil, fmt.Errorf("%q: start must be at least 1", s)
	case st.Rate > 100:
		return nil, fmt.Errorf("%q: rate is a percentage (0-100)", s)
	case st.Full < st.Start:
		return nil, fmt.Errorf("%q: full must not be less than start", s)
	}
	return &st, nil
}

// Acquire counts one more unauthenticated connection, or reports false (and counts nothing)
// when it must be dropped. Every true must be matched by one Release.
func (s *Startups) Acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= s.Full {
		return false
	}
	if s.n >= s.Start {
		p := float64(s.Rate) / 100
		if s.Full > s.Start {
			p += (1 - p) * float64(s.n-s.Start) / float64(s.Full-s.Start)
		}
		r := rand.Float64
		if s.rand != nil {
			r = s.rand
		}
		if r() < p {
			return false
		}
	}
	s.n++
	return true
}

// Release ends one unauthenticated connection admitted by Acquire.
func (s *Startups) Release() {
	s.mu.Lock()
	if s.n > 0 {
		s.n--
	}
	s.mu.Unlock()
}

// Current is the number of unauthenticated connections counted now.
func (s *Startups) Current() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
