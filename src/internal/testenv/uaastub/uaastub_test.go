package uaastub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

var _ = Describe("UAA stand-in", func() {
	var (
		stub       *uaastub.Server
		hc         *http.Client
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		stub = uaastub.New("ssh-proxy", "secret", nil)
		hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	})
	AfterEach(func() {
		hc.CloseIdleConnections()
		stub.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	post := func(ctx context.Context, user, pass string, form url.Values) (int, map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, stub.URL(), strings.NewReader(form.Encode()))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		body := map[string]any{}
		if err := json.Unmarshal(b, &body); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("body %q: %w", b, err)
		}
		return resp.StatusCode, body, nil
	}
	grant := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	}

	It("serves the token endpoint at /oauth/token on 127.0.0.1", func() {
		Expect(stub.URL()).To(MatchRegexp(`^http://127\.0\.0\.1:\d+/oauth/token$`))
	})

	It("trades a code once for a signed JWT with user claims", func() {
		code := stub.IssueCodeFor("u-9", "carol")
		status, body, err := post(context.Background(), "ssh-proxy", "secret", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(200))
		Expect(body).To(HaveKeyWithValue("token_type", "bearer"))
		Expect(body).To(HaveKey("expires_in"))
		token := body["access_token"].(string)
		id, name, ok := stub.ValidateToken(token)
		Expect(ok).To(BeTrue())
		Expect(id).To(Equal("u-9"))
		Expect(name).To(Equal("carol"))
		Expect(stub.Exchanges()).To(Equal(1))

		// tampering with the payload breaks the signature
		parts := strings.Split(token, ".")
		_, _, ok = stub.ValidateToken(parts[0] + "." + parts[1] + "x." + parts[2])
		Expect(ok).To(BeFalse())
		_, _, ok = stub.ValidateToken("a.b.c")
		Expect(ok).To(BeFalse())

		status, body, err = post(context.Background(), "ssh-proxy", "secret", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(400))
		Expect(body).To(HaveKeyWithValue("error", "invalid_grant"))
	})

	It("does not validate tokens from another stand-in", func() {
		other := uaastub.New("ssh-proxy", "secret", nil)
		defer other.Close()
		_, body, err := post(context.Background(), "ssh-proxy", "secret", grant(stub.IssueCode()))
		Expect(err).NotTo(HaveOccurred())
		_, _, ok := other.ValidateToken(body["access_token"].(string))
		Expect(ok).To(BeFalse())
	})

	It("refuses expired codes", func() {
		code := stub.IssueCode()
		stub.ExpireCodes()
		status, body, err := post(context.Background(), "ssh-proxy", "secret", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(400))
		Expect(body).To(HaveKeyWithValue("error", "invalid_grant"))
		Expect(body["error_description"]).NotTo(ContainSubstring(code))
	})

	It("checks client credentials and form fields", func() {
		code := stub.IssueCode()
		status, body, err := post(context.Background(), "ssh-proxy", "nope", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(401))
		Expect(body).To(HaveKeyWithValue("error", "unauthorized"))

		status, _, err = post(context.Background(), "", "", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(401))

		status, body, err = post(context.Background(), "ssh-proxy", "secret", url.Values{"grant_type": {"password"}, "code": {code}})
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(400))
		Expect(body).To(HaveKeyWithValue("error", "unsupported_grant_type"))

		status, body, err = post(context.Background(), "ssh-proxy", "secret", url.Values{"grant_type": {"authorization_code"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(400))
		Expect(body).To(HaveKeyWithValue("error", "invalid_request"))

		// none of the refusals above used up the code
		status, _, err = post(context.Background(), "ssh-proxy", "secret", grant(code))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(200))
	})

	It("injects faults", func() {
		stub.SetMode(uaastub.ServerError)
		status, body, err := post(context.Background(), "ssh-proxy", "secret", grant(stub.IssueCode()))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(503))
		Expect(body).To(HaveKeyWithValue("error", "server_error"))

		stub.SetMode(uaastub.Down)
		_, _, err = post(context.Background(), "ssh-proxy", "secret", grant(stub.IssueCode()))
		Expect(err).To(HaveOccurred())

		stub.SetMode(uaastub.Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err = post(ctx, "ssh-proxy", "secret", grant(stub.IssueCode()))
		Expect(err).To(MatchError(context.DeadlineExceeded))

		stub.SetMode(uaastub.Normal)
		status, _, err = post(context.Background(), "ssh-proxy", "secret", grant(stub.IssueCode()))
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(200))
		Expect(stub.Requests()).To(Equal(4))
	})

	It("ends hanging requests on Close", func() {
		stub.SetMode(uaastub.Hang)
		errs := make(chan error, 1)
		go func() {
			_, _, err := post(context.Background(), "ssh-proxy", "secret", grant("x"))
			errs <- err
		}()
		Eventually(stub.Requests, 5*time.Second, 10*time.Millisecond).Should(Equal(1))
		stub.Close()
		Eventually(errs, 5*time.Second).Should(Receive(HaveOccurred()))
	})
})
