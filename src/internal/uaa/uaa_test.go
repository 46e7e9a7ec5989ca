package uaa_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/peer"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
	"github.com/app-ssh/app-ssh/internal/uaa"
)

var _ = Describe("Client against the UAA stand-in", func() {
	var (
		stub       *uaastub.Server
		client     *uaa.Client
		clientTLS  *tls.Config
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		ca, err := certs.NewCA("uaa-ca")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("uaa", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		stub = uaastub.New("ssh-proxy", "proxy-secret", certs.ServerTLS(kp, nil))
		clientTLS = certs.ClientTLS(ca.Pool(), nil)
		client, err = uaa.NewClient(uaa.Config{
			TokenURL: stub.URL(), ClientID: "ssh-proxy", ClientSecret: "proxy-secret",
			TLS: clientTLS, Timeout: 5 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
	})

	AfterEach(func() {
		client.Close()
		stub.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	It("exchanges a code for a bearer token naming the user", func() {
		code := stub.IssueCodeFor("user-guid-1", "alice")
		tok, err := client.ExchangeCode(context.Background(), code)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.ToLower(tok.TokenType)).To(Equal("bearer"))
		Expect(tok.ExpiresIn).To(BeNumerically(">", 0))
		Expect(tok.Subject).To(Equal("user-guid-1"))
		Expect(tok.UserName).To(Equal("alice"))
		id, name, ok := stub.ValidateToken(tok.AccessToken)
		Expect(ok).To(BeTrue())
		Expect(id).To(Equal("user-guid-1"))
		Expect(name).To(Equal("alice"))
	})

	It("refuses a code the second time", func() {
		code := stub.IssueCode()
		_, err := client.ExchangeCode(context.Background(), code)
		Expect(err).NotTo(HaveOccurred())
		_, err = client.ExchangeCode(context.Background(), code)
		Expect(err).To(MatchError(uaa.ErrInvalidCode))
	})

	It("refuses unknown, empty and expired codes", func() {
		_, err := client.ExchangeCode(context.Background(), "not-a-code")
		Expect(err).To(MatchError(uaa.ErrInvalidCode))
		_, err = client.ExchangeCode(context.Background(), "")
		Expect(err).To(MatchError(uaa.ErrInvalidCode))
		code := stub.IssueCode()
		stub.ExpireCodes()
		_, err = client.ExchangeCode(context.Background(), code)
		Expect(err).To(MatchError(uaa.ErrInvalidCode))
		Expect(err.Error()).NotTo(ContainSubstring(code))
	})

	It("reports wrong client credentials as a client problem, not a bad code", func() {
		bad, err := uaa.NewClient(uaa.Config{TokenURL: stub.URL(), ClientID: "ssh-proxy", ClientSecret: "wrong", TLS: clientTLS})
		Expect(err).NotTo(HaveOccurred())
		defer bad.Close()
		_, err = bad.ExchangeCode(context.Background(), stub.IssueCode())
		Expect(err).To(MatchError(uaa.ErrClientRejected))
		Expect(stub.Exchanges()).To(Equal(0))
	})

	It("does not trust a server outside its CA pool", func() {
		other, err := certs.NewCA("other")
		Expect(err).NotTo(HaveOccurred())
		bad, err := uaa.NewClient(uaa.Config{TokenURL: stub.URL(), ClientID: "ssh-proxy", ClientSecret: "proxy-secret", TLS: certs.ClientTLS(other.Pool(), nil)})
		Expect(err).NotTo(HaveOccurred())
		defer bad.Close()
		_, err = bad.ExchangeCode(context.Background(), stub.IssueCode())
		var unavailable *peer.UnavailableError
		Expect(errors.As(err, &unavailable)).To(BeTrue(), "want TLS failure, got %v", err)
		Expect(stub.Exchanges()).To(Equal(0))
	})

	DescribeTable("maps faults to UnavailableError",
		func(mode uaastub.Mode, want string) {
			stub.SetMode(mode)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := client.ExchangeCode(ctx, stub.IssueCode())
			var unavailable *peer.UnavailableError
			Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(HavePrefix("UAA unavailable: "))
			Expect(err.Error()).To(ContainSubstring(want))
			Expect(errors.Is(err, uaa.ErrInvalidCode)).To(BeFalse())
		},
		Entry("server error", uaastub.ServerError, "HTTP 503"),
		Entry("hang", uaastub.Hang, "timed out"),
		Entry("down", uaastub.Down, ""),
	)

	It("reports a closed server as unavailable", func() {
		stub.Close()
		_, err := client.ExchangeCode(context.Background(), "abc")
		var unavailable *peer.UnavailableError
		Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
	})
})

var _ = Describe("Client wire format", func() {
	var (
		srv  *httptest.Server
		mu   sync.Mutex
		seen *http.Request
		form map[string][]string
		resp func(w http.ResponseWriter)
	)

	BeforeEach(func() {
		resp = func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"` + jwt(`{"user_id":"u-1","sub":"s-1","user_name":"bob"}`) + `","token_type":"bearer","expires_in":599,"scope":"openid","jti":"x"}`))
		}
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			seen = r
			form = r.PostForm
			mu.Unlock()
			resp(w)
		}))
	})
	AfterEach(func() { srv.Close() })

	newClient := func() *uaa.Client {
		c, err := uaa.NewClient(uaa.Config{TokenURL: srv.URL + "/oauth/token", ClientID: "ssh-proxy", ClientSecret: "s3cret"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		return c
	}

	It("posts an authorization_code grant with basic auth and JSON accept, as diego-ssh does", func() {
		tok, err := newClient().ExchangeCode(context.Background(), "abc123")
		Expect(err).NotTo(HaveOccurred())
		mu.Lock()
		defer mu.Unlock()
		Expect(seen.Method).To(Equal(http.MethodPost))
		Expect(seen.URL.Path).To(Equal("/oauth/token"))
		Expect(seen.Header.Get("Accept")).To(Equal("application/json"))
		Expect(seen.Header.Get("Content-Type")).To(Equal("application/x-www-form-urlencoded"))
		id, secret, ok := seen.BasicAuth()
		Expect(ok).To(BeTrue())
		Expect(id).To(Equal("ssh-proxy"))
		Expect(secret).To(Equal("s3cret"))
		Expect(form).To(Equal(map[string][]string{"grant_type": {"authorization_code"}, "code": {"abc123"}}))
		Expect(tok.ExpiresIn).To(Equal(599))
		Expect(tok.Subject).To(Equal("u-1"))
		Expect(tok.UserName).To(Equal("bob"))
	})

	It("falls back to sub, and to empty claims when the token is not a JWT", func() {
		resp = func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"access_token":"` + jwt(`{"sub":"s-2"}`) + `","token_type":"bearer"}`))
		}
		tok, err := newClient().ExchangeCode(context.Background(), "c")
		Expect(err).NotTo(HaveOccurred())
		Expect(tok.Subject).To(Equal("s-2"))
		Expect(tok.UserName).To(BeEmpty())

		resp = func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"access_token":"opaque","token_type":"bearer"}`)) }
		tok, err = newClient().ExchangeCode(context.Background(), "c")
		Expect(err).NotTo(HaveOccurred())
		Expect(tok.AccessToken).To(Equal("opaque"))
		Expect(tok.Subject).To(BeEmpty())
	})

	DescribeTable("maps UAA answers",
		func(status int, body string, check func(error)) {
			resp = func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = w.Write([]byte(body))
			}
			_, err := newClient().ExchangeCode(context.Background(), "c")
			check(err)
		},
		Entry("400 invalid_grant", 400, `{"error":"invalid_grant","error_description":"Invalid authorization code: c"}`,
			func(err error) { Expect(err).To(MatchError(uaa.ErrInvalidCode)) }),
		Entry("401 without a body", 401, ``,
			func(err error) { Expect(err).To(MatchError(uaa.ErrInvalidCode)) }),
		Entry("401 bad client credentials", 401, `{"error":"unauthorized","error_description":"Bad credentials"}`,
			func(err error) { Expect(err).To(MatchError(uaa.ErrClientRejected)) }),
		Entry("502", 502, `<html>bad gateway</html>`,
			func(err error) { Expect(err).To(MatchError("UAA unavailable: HTTP 502")) }),
		Entry("200 with garbage", 200, `not json`,
			func(err error) { Expect(err).To(MatchError("UAA unavailable: malformed token response")) }),
		Entry("200 without a token", 200, `{"token_type":"bearer"}`,
			func(err error) { Expect(err).To(MatchError("UAA unavailable: token response has no access_token")) }),
	)

	It("rejects bad configuration", func() {
		_, err := uaa.NewClient(uaa.Config{TokenURL: "ftp://x", ClientID: "a"})
		Expect(err).To(HaveOccurred())
		_, err = uaa.NewClient(uaa.Config{TokenURL: "https://uaa.example.com/oauth/token"})
		Expect(err).To(HaveOccurred())
	})
})

func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + "." + enc([]byte("sig"))
}
