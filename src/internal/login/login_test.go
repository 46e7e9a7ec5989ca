package login_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/peer"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/uaa"
)

type fakeUAA struct {
	codes map[string]uaa.Token
	err   error
	calls int
}

func (f *fakeUAA) ExchangeCode(ctx context.Context, code string) (uaa.Token, error) {
	f.calls++
	if _, ok := ctx.Deadline(); !ok {
		return uaa.Token{}, errors.New("no deadline")
	}
	if f.err != nil {
		return uaa.Token{}, f.err
	}
	t, ok := f.codes[code]
	if !ok {
		return uaa.Token{}, uaa.ErrInvalidCode
	}
	delete(f.codes, code)
	return t, nil
}

type fakeCC struct {
	access map[string]string // "token app/index" -> process guid
	err    error
}

func (f *fakeCC) SSHAccess(ctx context.Context, token, app string, index int) (string, error) {
	if f.err != nil {
		return "", f.err
	}
	p, ok := f.access[fmt.Sprintf("%s %s/%d", token, app, index)]
	if !ok {
		return "", fmt.Errorf("cc said 404: %w", login.ErrNoSuchApp)
	}
	return p, nil
}

// noInstance is a resolver for which no instance runs (the grant then carries a refusal).
type noInstance struct{}

func (noInstance) Resolve(context.Context, string, int) (target.Target, error) {
	return target.Target{}, &target.InstanceError{Index: 0, Instances: 1, State: "CRASHED"}
}

var _ = Describe("ParseUsername", func() {
	DescribeTable("accepts",
		func(in string, scheme login.Scheme, guid string, idx int) {
			u, err := login.ParseUsername(in)
			Expect(err).NotTo(HaveOccurred())
			Expect(u).To(Equal(login.Username{Scheme: scheme, GUID: guid, Index: idx}))
			Expect(u.String()).To(Equal(in))
		},
		Entry("cf", "cf:8f1c2c3e-aaaa-4bbb-8ccc-123456789abc/0", login.SchemeCF, "8f1c2c3e-aaaa-4bbb-8ccc-123456789abc", 0),
		Entry("cf index 12", "cf:app/12", login.SchemeCF, "app", 12),
		Entry("diego", "diego:pg-1-v2/3", login.SchemeDiego, "pg-1-v2", 3),
		Entry("diego with underscores, as diego-ssh accepts", "diego:my_process-guid_2/0", login.SchemeDiego, "my_process-guid_2", 0),
		Entry("max index", "cf:a/2147483647", login.SchemeCF, "a", 2147483647),
	)
	DescribeTable("rejects",
		func(in string) {
			_, err := login.ParseUsername(in)
			Expect(err).To(MatchError(login.ErrUsernameFormat))
		},
		Entry("no scheme", "app/0"),
		Entry("unknown scheme", "vcap:app/0"),
		Entry("upper-case scheme", "CF:app/0"),
		Entry("no index", "cf:app"),
		Entry("empty index", "cf:app/"),
		Entry("empty guid", "cf:/0"),
		Entry("negative", "cf:app/-1"),
		Entry("plus sign", "cf:app/+1"),
		Entry("leading zero", "cf:app/01"),
		Entry("too large", "cf:app/2147483648"),
		Entry("second slash", "cf:app/0/1"),
		Entry("space", "cf:ap p/0"),
		Entry("slash in guid", "cf:a/b/0"),
		Entry("dot in guid", "diego:a.b/0"),
		Entry("long guid", "cf:"+strings.Repeat("a", 129)+"/0"),
	)
})

var _ = Describe("Authenticator", func() {
	var (
		u  *fakeUAA
		cc *fakeCC
		a  *login.Login
	)
	BeforeEach(func() {
		u = &fakeUAA{codes: map[string]uaa.Token{"code-1": {AccessToken: "tok-1", UserName: "alice", Subject: "uid-1"}}}
		cc = &fakeCC{access: map[string]string{"tok-1 app-1/2": "pg-1"}}
		a = &login.Login{Resolver: noInstance{}, CF: &login.CF{UAA: u, CC: cc, Timeout: time.Second}}
	})

	It("turns a good code into a grant naming the process, carried in the permissions", func() {
		g, err := a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
		Expect(err).NotTo(HaveOccurred())
		Expect(g.Scheme).To(Equal(login.SchemeCF))
		Expect([]any{g.AppGUID, g.ProcessGUID, g.Index, g.User, g.UserID, g.SSHUser}).To(Equal(
			[]any{"app-1", "pg-1", 2, "alice", "uid-1", "cf:app-1/2"}))
		Expect(login.GrantOf(g.Permissions())).To(BeIdenticalTo(g))
		Expect(g.Permissions().Extensions).To(BeEmpty())
		Expect(fmt.Sprintf("%+v", *g)).NotTo(ContainSubstring("tok-1"))
	})

	expectReason := func(err error, reason *login.Reason) {
		GinkgoHelper()
		var r *login.Refusal
		Expect(errors.As(err, &r)).To(BeTrue(), "%v", err)
		Expect(r.Reason).To(BeIdenticalTo(reason))
		Expect(login.RefusalOf(err).Message).To(Equal(reason.Text()))
	}

	It("refuses a used code", func() {
		_, err := a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
		Expect(err).NotTo(HaveOccurred())
		_, err = a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
		expectReason(err, login.ReasonInvalidCode)
	})
	It("refuses an empty code without asking UAA", func() {
		_, err := a.Password(context.Background(), "cf:app-1/2", nil)
		expectReason(err, login.ReasonInvalidCode)
		Expect(u.calls).To(Equal(0))
	})
	It("says UAA is unavailable", func() {
		u.err = &peer.UnavailableError{Peer: "UAA", Cause: "connection refused"}
		_, err := a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
		expectReason(err, login.ReasonUAAUnavailable)
	})
	It("says the app is not found for another index", func() {
		_, err := a.Password(context.Background(), "cf:app-1/3", []byte("code-1"))
		expectReason(err, login.ReasonNoSuchApp)
	})
	It("gives each Cloud Controller refusal its own reason", func() {
		for ccErr, reason := range map[error]*login.Reason{
			login.ErrNotPermitted: login.ReasonNotPermitted, login.ErrNoSuchApp: login.ReasonNoSuchApp,
			login.ErrSSHDisabled: login.ReasonSSHDisabled, login.ErrTokenRejected: login.ReasonTokenRejected,
			login.ErrCCMisconfigured: login.ReasonCCMisconfigured,
		} {
			cc.err = fmt.Errorf("cc: %w", ccErr)
			u.codes["code-1"] = uaa.Token{AccessToken: "tok-1"}
			_, err := a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
			expectReason(err, reason)
			Expect(errors.Is(err, ccErr)).To(BeTrue())
		}
	})
	It("says the Cloud Controller is unavailable", func() {
		cc.err = errors.New("dial tcp: refused")
		_, err := a.Password(context.Background(), "cf:app-1/2", []byte("code-1"))
		expectReason(err, login.ReasonCCUnavailable)
	})
	It("refuses bad user names and disabled schemes", func() {
		_, err := a.Password(context.Background(), "root", []byte("x"))
		expectReason(err, login.ReasonBadUsername)
		_, err = a.Password(context.Background(), "diego:pg/0", []byte("x"))
		expectReason(err, login.ReasonSchemeDisabled)
	})

	It("refuses every user name with one reason when no scheme is enabled", func() {
		none := &login.Login{Resolver: noInstance{}}
		for _, user := range []string{"cf:app-1/0", "diego:pg/0", "web/0", "root"} {
			_, err := none.Password(context.Background(), user, []byte("x"))
			expectReason(err, login.ReasonNoScheme)
		}
	})

	Context("diego credentials", func() {
		BeforeEach(func() {
			a = &login.Login{Resolver: noInstance{}, Diego: &login.Diego{Credentials: []byte("s3cret")}}
		})
		It("accepts the shared secret", func() {
			g, err := a.Password(context.Background(), "diego:pg-9/1", []byte("s3cret"))
			Expect(err).NotTo(HaveOccurred())
			Expect(g.ProcessGUID).To(Equal("pg-9"))
			Expect(g.Index).To(Equal(1))
			Expect(g.AppGUID).To(BeEmpty())
		})
		It("refuses anything else, and cf when cf is disabled", func() {
			for _, pw := range []string{"", "s3cre", "s3cret ", "S3cret"} {
				_, err := a.Password(context.Background(), "diego:pg-9/1", []byte(pw))
				expectReason(err, login.ReasonInvalidCredential)
			}
			_, err := a.Password(context.Background(), "cf:app/0", []byte("s3cret"))
			expectReason(err, login.ReasonSchemeDisabled)
		})
		It("refuses everything when the credentials are empty", func() {
			a.Diego.Credentials = nil
			_, err := a.Password(context.Background(), "diego:pg-9/1", nil)
			expectReason(err, login.ReasonInvalidCredential)
		})
	})
})

// listenSilently accepts TCP connections and never says anything; it returns the address.
func listenSilently() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			DeferCleanup(c.Close)
		}
	}()
	return ln.Addr().String()
}
