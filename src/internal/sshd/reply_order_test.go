package sshd_test

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gleak"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/sshd"
)

var _ = Describe("Reply order", func() {
	var base []gleak.Goroutine

	BeforeEach(func() {
		base = gleak.Goroutines()
		DeferCleanup(func() {
			Eventually(gleak.Goroutines, wait).ShouldNot(gleak.HaveLeaked(base))
		})
		// Registered before the server, so it runs after the server stopped.
		DeferCleanup(sshd.HoldRepliesUntilFinished(time.Second))
	})

	// A command that exits before its exec request has been answered must still be answered
	// first: a reply written after the channel close is dropped, and the client's exec fails
	// (EOF here; "exec request failed on channel 0" for OpenSSH through ssh-proxy).
	It("answers exec before sending the exit status and closing the channel", func() {
		client := newSigner()
		r := serve(client, nil)
		c := dial(r.addr, client)
		for i := range 3 {
			s, err := c.NewSession()
			Expect(err).NotTo(HaveOccurred())
			err = s.Run("exit " + string(rune('3'+i)))
			var ee *ssh.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "run %d: %v", i, err)
			Expect(ee.ExitStatus()).To(Equal(3 + i))
		}
	})

})
