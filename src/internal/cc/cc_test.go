package cc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/cc"
	"github.com/app-ssh/app-ssh/internal/peer"
	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
	"github.com/app-ssh/app-ssh/internal/uaa"
)

var _ = Describe("Client against the stand-ins", func() {
	var (
		uaaStub    *uaastub.Server
		ccStub     *ccstub.Server
		uaaClient  *uaa.Client
		client     *cc.Client
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		ca, err := certs.NewCA("cc-ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("cc", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		uaaStub = uaastub.New("ssh-proxy", "secret", nil)
		ccStub = ccstub.New(certs.ServerTLS(kp, nil))
		ccStub.SetValidator(uaaStub.Validator())
		uaaClient, err = uaa.NewClient(uaa.Config{TokenURL: uaaStub.URL(), ClientID: "ssh-proxy", ClientSecret: "secret"})
		Expect(err).NotTo(HaveOccurred())
		client, err = cc.NewClient(cc.Config{InternalURL: ccStub.URL(), TLS: certs.ClientTLS(ca.Pool(), nil), Timeout: 5 * time.Second})
		Expect(err).NotTo(HaveOccurred())
	})

	AfterEach(func() {
		client.Close()
		uaaClient.Close()
		ccStub.Close()
		uaaStub.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	token := func(userID string) string {
		tok, err := uaaClient.ExchangeCode(context.Background(), uaaStub.IssueCodeFor(userID, userID+"-name"))
		Expect(err).NotTo(HaveOccurred())
		return tok.AccessToken
	}

	It("returns the process guid for an allowed user and records the access", func() {
		ccStub.AddApp("app-1", "app-1-v2", 2, true, "alice")
		access, err := client.SSHAccess(context.Background(), token("alice"), "app-1", 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(access.ProcessGUID).To(Equal("app-1-v2"))
		Expect(ccStub.Events()).To(Equal([]ccstub.Event{{AppGUID: "app-1", Index: 1, User: "alice"}}))
	})

	It("refuses another user with ErrForbidden", func() {
		ccStub.AddApp("app-1", "app-1-v2", 2, true, "alice")
		_, err := client.SSHAccess(context.Background(), token("mallory"), "app-1", 0)
		Expect(err).To(MatchError(cc.ErrForbidden))
		Expect(err.Error()).To(ContainSubstring("CF-NotAuthorized"))
		Expect(ccStub.Events()).To(BeEmpty())
	})

	It("refuses when SSH is disabled (CC's 400 CF-InvalidRequest)", func() {
		ccStub.AddApp("app-1", "app-1-v2", 2, false)
		_, err := client.SSHAccess(context.Background(), token("alice"), "app-1", 0)
		Expect(err).To(MatchError(cc.ErrSSHDisabled))
		Expect(err.Error()).To(ContainSubstring("CF-InvalidRequest"))
		Expect(ccStub.SetSSHEnabled("app-1", true)).To(BeTrue())
		_, err = client.SSHAccess(context.Background(), token("alice"), "app-1", 0)
		Expect(err).NotTo(HaveOccurred())
	})

	It("refuses tokens the UAA stand-in did not issue", func() {
		ccStub.AddApp("app-1", "app-1-v2", 1, true)
		_, err := client.SSHAccess(context.Background(), "forged.token.here", "app-1", 0)
		Expect(err).To(MatchError(cc.ErrUnauthenticated))
		Expect(err.Error()).NotTo(ContainSubstring("forged"))
	})

	It("reports unknown apps with ErrNotFound, and out-of-range indexes only in strict mode", func() {
		_, err := client.SSHAccess(context.Background(), token("alice"), "nope", 0)
		Expect(err).To(MatchError(cc.ErrNotFound))
		ccStub.AddApp("app-1", "app-1-v2", 1, true)
		_, err = client.SSHAccess(context.Background(), token("alice"), "app-1", 5)
		Expect(err).NotTo(HaveOccurred())
		ccStub.SetStrictIndex(true)
		_, err = client.SSHAccess(context.Background(), token("alice"), "app-1", 5)
		Expect(err).To(MatchError(cc.ErrNotFound))
	})

	DescribeTable("maps faults to UnavailableError",
		func(mode ccstub.Mode, want string) {
			ccStub.AddApp("app-1", "app-1-v2", 1, true)
			tok := token("alice")
			ccStub.SetMode(mode)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := client.SSHAccess(ctx, tok, "app-1", 0)
			var unavailable *peer.UnavailableError
			Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(HavePrefix("Cloud Controller unavailable: "))
			Expect(err.Error()).To(ContainSubstring(want))
			Expect(err.Error()).NotTo(ContainSubstring(tok))
		},
		Entry("server error", ccstub.ServerError, "HTTP 500"),
		Entry("hang", ccstub.Hang, "timed out"),
		Entry("down", ccstub.Down, ""),
	)
})

var _ = Describe("Client wire format", func() {
	var (
		srv    *httptest.Server
		mu     sync.Mutex
		seen   *http.Request
		status int
		body   string
	)

	BeforeEach(func() {
		status, body = 200, `{"process_guid":"pg-1"}`
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = r
			st, b := status, body
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			_, _ = w.Write([]byte(b))
		}))
	})
	AfterEach(func() { srv.Close() })

	call := func(guid string, index int) (cc.Access, error) {
		c, err := cc.NewClient(cc.Config{InternalURL: srv.URL + "/"})
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		return c.SSHAccess(context.Background(), "tok-123", guid, index)
	}

	It("sends GET /internal/apps/{guid}/ssh_access/{index} with a bearer token", func() {
		access, err := call("6f8a-guid", 3)
		Expect(err).NotTo(HaveOccurred())
		Expect(access.ProcessGUID).To(Equal("pg-1"))
		mu.Lock()
		defer mu.Unlock()
		Expect(seen.Method).To(Equal(http.MethodGet))
		Expect(seen.URL.Path).To(Equal("/internal/apps/6f8a-guid/ssh_access/3"))
		Expect(seen.Header.Get("Authorization")).To(Equal("bearer tok-123"))
	})

	It("escapes the app guid into one path segment", func() {
		_, err := call("../v3/x", 0)
		Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		defer mu.Unlock()
		Expect(seen.URL.EscapedPath()).To(Equal("/internal/apps/..%2Fv3%2Fx/ssh_access/0"))
	})

	DescribeTable("maps answers",
		func(st int, b string, check func(error)) {
			mu.Lock()
			status, body = st, b
			mu.Unlock()
			_, err := call("g", 0)
			check(err)
		},
		Entry("401", 401, `{"description":"Invalid Auth Token","error_code":"CF-InvalidAuthToken","code":1000}`,
			func(err error) { Expect(err).To(MatchError(cc.ErrUnauthenticated)) }),
		Entry("403", 403, ``, func(err error) { Expect(err).To(MatchError(cc.ErrForbidden)) }),
		Entry("400 CF-InvalidRequest", 400, `{"error_code":"CF-InvalidRequest"}`, func(err error) {
			Expect(err).To(MatchError(cc.ErrSSHDisabled))
			Expect(err.Error()).To(ContainSubstring("HTTP 400, CF-InvalidRequest"))
		}),
		Entry("400 from nginx", 400, `<html>No required SSL certificate was sent</html>`,
			func(err error) { Expect(err).To(MatchError(cc.ErrRefused)) }),
		Entry("404 CF-AppNotFound", 404, `{"error_code":"CF-AppNotFound"}`, func(err error) {
			Expect(err).To(MatchError(cc.ErrNotFound))
			Expect(errors.Is(err, cc.ErrForbidden)).To(BeFalse())
		}),
		Entry("404 CF-NotFound (unknown route)", 404, `{"error_code":"CF-NotFound"}`,
			func(err error) { Expect(err).To(MatchError(cc.ErrRefused)) }),
		Entry("405", 405, ``, func(err error) { Expect(err).To(MatchError(cc.ErrRefused)) }),
		Entry("a hostile error code is capped", 400, `{"error_code":"`+strings.Repeat("A", 500)+"\u0007"+`"}`, func(err error) {
			Expect(err).To(MatchError(cc.ErrRefused))
			Expect(len(err.Error())).To(BeNumerically("<", 200))
		}),
		Entry("503", 503, ``, func(err error) { Expect(err).To(MatchError("Cloud Controller unavailable: HTTP 503")) }),
		Entry("302", 302, ``, func(err error) { Expect(err).To(MatchError("Cloud Controller unavailable: unexpected HTTP 302")) }),
		Entry("200 garbage", 200, `<html>`, func(err error) {
			Expect(err).To(MatchError("Cloud Controller unavailable: malformed ssh_access response"))
		}),
		Entry("200 without guid", 200, `{}`, func(err error) {
			Expect(err).To(MatchError("Cloud Controller unavailable: ssh_access response has no process_guid"))
		}),
	)

	It("rejects bad configuration and arguments", func() {
		_, err := cc.NewClient(cc.Config{InternalURL: "cc.internal"})
		Expect(err).To(HaveOccurred())
		_, err = call("", 0)
		Expect(err).To(MatchError(cc.ErrNotFound))
		_, err = call("g", -1)
		Expect(err).To(MatchError(cc.ErrNotFound))
	})
})
