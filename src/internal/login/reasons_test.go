package login_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/relay"
	"github.com/app-ssh/app-ssh/internal/target"
)

// docRow is one row of docs/refusals.md's table.
type docRow struct{ code, where, blame, wording string }

// refusalDoc parses docs/refusals.md's table (rows whose first cell is a `code`).
func refusalDoc() []docRow {
	b, err := os.ReadFile("../../../docs/refusals.md")
	Expect(err).NotTo(HaveOccurred())
	var rows []docRow
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		Expect(len(cells)).To(BeNumerically(">=", 5), line)
		unquote := func(s string) string { return strings.Trim(strings.TrimSpace(s), "`") }
		rows = append(rows, docRow{code: unquote(cells[0]), where: unquote(cells[1]), blame: unquote(cells[2]), wording: unquote(cells[3])})
	}
	return rows
}

var _ = Describe("the refusal table", func() {
	It("gives every reason a blame, a place, a unique code and one line of wording", func() {
		codes := map[string]bool{}
		Expect(login.Reasons()).NotTo(BeEmpty())
		for _, r := range login.Reasons() {
			Expect(r.Blame()).To(BeElementOf(login.BlameClient, login.BlamePlatform), r.Code())
			Expect(r.Where()).To(BeElementOf(login.AtAuthentication, login.AtChannelOpen), r.Code())
			Expect(codes).NotTo(HaveKey(r.Code()))
			codes[r.Code()] = true
			Expect(r.Text()).NotTo(BeEmpty())
			Expect(r.Text()).NotTo(ContainSubstring("\n"))
		}
	})

	It("is the table docs/refusals.md shows, row for row", func() {
		var want []docRow
		for _, r := range login.Reasons() {
			want = append(want, docRow{code: r.Code(), where: r.Where().String(), blame: r.Blame().String(), wording: r.Text()})
		}
		Expect(refusalDoc()).To(Equal(want))
	})

	It("treats a refusal without a reason as the platform's (never penalised)", func() {
		Expect(login.RefusalOf(errors.New("anything")).Blame()).To(Equal(login.BlamePlatform))
		Expect((&login.Refusal{}).Blame()).To(Equal(login.BlamePlatform))
		var none *login.Refusal
		Expect(none.Blame()).To(Equal(login.BlamePlatform))
	})
})

// fixedResolver answers with one target or error.
type fixedResolver struct {
	t   target.Target
	err error
}

func (f fixedResolver) Resolve(context.Context, string, int) (target.Target, error) {
	return f.t, f.err
}

var _ = Describe("wording what the instance lookup and the connect report", func() {
	grantFor := func(r login.Resolver, user string) *login.Grant {
		l := &login.Login{Diego: &login.Diego{Credentials: []byte("s")}, Resolver: r, DialTimeout: 2 * time.Second}
		g, err := l.Password(context.Background(), user, []byte("s"))
		Expect(err).NotTo(HaveOccurred())
		Expect(g.Backend).To(BeNil())
		Expect(g.Refusal).NotTo(BeNil())
		Expect(g.Refusal.Reason.Where()).To(Equal(login.AtChannelOpen))
		return g
	}
	DescribeTable("resolver errors", func(err error, reason *login.Reason, message string) {
		g := grantFor(fixedResolver{err: err}, "diego:pg-1/3")
		Expect(g.Refusal.Reason).To(BeIdenticalTo(reason))
		Expect(g.Refusal.Message).To(Equal(message))
		Expect(errors.Is(g.Refusal, err)).To(BeTrue())
	},
		Entry("index beyond the instances, app named", &target.InstanceError{Index: 3, Instances: 2, AppName: "my-app"},
			login.ReasonNoSuchInstance, "instance 3 of app my-app does not exist (2 instances)"),
		Entry("index beyond the instances, no name", &target.InstanceError{Index: 3, Instances: 2},
			login.ReasonNoSuchInstance, "instance 3 of app pg-1 does not exist (2 instances)"),
		Entry("crashed", &target.InstanceError{Index: 0, Instances: 2, State: "CRASHED"}, login.ReasonNotRunning, "instance 0 is CRASHED"),
		Entry("starting", &target.InstanceError{Index: 1, Instances: 2, State: "CLAIMED"}, login.ReasonNotRunning, "instance 1 is STARTING"),
		Entry("absent", &target.InstanceError{Index: 1, Instances: 2}, login.ReasonNotRunning, "instance 1 is not running"),
		Entry("no process", fmt.Errorf("%w: x", target.ErrProcessNotFound), login.ReasonProcessNotFound, login.ReasonProcessNotFound.Text()),
		Entry("no route", fmt.Errorf("%w: x", target.ErrNoSSHRoute), login.ReasonNoSSHRoute, login.ReasonNoSSHRoute.Text()),
		Entry("no TLS port", fmt.Errorf("%w: x", target.ErrNoTLSPort), login.ReasonBackendTLS, login.ReasonBackendTLS.Text()),
		Entry("BBS down", fmt.Errorf("%w: x", target.ErrBBSUnavailable), login.ReasonBBSUnavailable, "BBS unavailable"),
	)

	It("words a backend that does not answer with the timeout", func() {
		ln := listenSilently()
		g := grantFor(fixedResolver{t: target.Target{Address: ln, HostKey: fingerprint.Compute(fingerprint.SHA256, newSigner().PublicKey())}}, "diego:pg-1/0")
		Expect(g.Refusal.Reason).To(BeIdenticalTo(login.ReasonBackendTimeout))
		Expect(g.Refusal.Message).To(Equal("the instance's sshd did not answer within 2s"))
		var he *relay.HandshakeError
		Expect(errors.As(g.Refusal, &he)).To(BeTrue())
	})

	It("words a refused connection", func() {
		g := grantFor(fixedResolver{t: target.Target{Address: "127.0.0.1:1", HostKey: fingerprint.Compute(fingerprint.SHA256, newSigner().PublicKey())}}, "diego:pg-1/0")
		Expect(g.Refusal.Reason).To(BeIdenticalTo(login.ReasonBackendDown))
	})

	It("refuses at authentication when cf or diego has no instance source", func() {
		l := &login.Login{Diego: &login.Diego{Credentials: []byte("s")}}
		_, err := l.Password(context.Background(), "diego:pg-1/0", []byte("s"))
		Expect(login.RefusalOf(err).Reason).To(BeIdenticalTo(login.ReasonSchemeDisabled))
	})
})
