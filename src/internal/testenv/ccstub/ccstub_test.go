package ccstub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/testenv/ccstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("Cloud Controller stand-in", func() {
	var (
		stub       *ccstub.Server
		hc         *http.Client
		goroutines int
	)

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		ca, err := certs.NewCA("cc")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("cc", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		stub = ccstub.New(certs.ServerTLS(kp, nil))
		stub.SetValidator(func(t string) (string, bool) {
			switch t {
			case "tok-alice":
				return "alice", true
			case "tok-bob":
				return "bob", true
			}
			return "", false
		})
		stub.AddApp("app-1", "app-1-pg", 2, true, "alice")
		hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(ca.Pool(), nil)}}
	})
	AfterEach(func() {
		hc.CloseIdleConnections()
		stub.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	get := func(ctx context.Context, method, path, auth string) (int, map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, stub.URL()+path, nil)
		if err != nil {
			return 0, nil, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
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
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("body %q: %w", b, err)
		}
		return resp.StatusCode, m, nil
	}

	DescribeTable("answers like cloud_controller_ng",
		func(method, path, auth string, wantStatus int, wantKey, wantValue string) {
			status, body, err := get(context.Background(), method, path, auth)
			Expect(err).NotTo(HaveOccurred())
			Expect(status).To(Equal(wantStatus))
			Expect(body).To(HaveKeyWithValue(wantKey, wantValue))
		},
		Entry("granted", "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice", 200, "process_guid", "app-1-pg"),
		Entry("Bearer in any case", "GET", "/internal/apps/app-1/ssh_access/1", "Bearer tok-alice", 200, "process_guid", "app-1-pg"),
		Entry("no token", "GET", "/internal/apps/app-1/ssh_access/0", "", 401, "error_code", "CF-NotAuthenticated"),
		Entry("bad token", "GET", "/internal/apps/app-1/ssh_access/0", "bearer junk", 401, "error_code", "CF-InvalidAuthToken"),
		Entry("basic auth", "GET", "/internal/apps/app-1/ssh_access/0", "basic tok-alice", 401, "error_code", "CF-NotAuthenticated"),
		Entry("other user", "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-bob", 403, "error_code", "CF-NotAuthorized"),
		Entry("unknown app", "GET", "/internal/apps/zzz/ssh_access/0", "bearer tok-alice", 404, "error_code", "CF-AppNotFound"),
		Entry("bad index", "GET", "/internal/apps/app-1/ssh_access/x", "bearer tok-alice", 404, "error_code", "CF-NotFound"),
		Entry("old path without index", "GET", "/internal/apps/app-1/ssh_access", "bearer tok-alice", 404, "error_code", "CF-NotFound"),
		Entry("wrong method", "POST", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice", 404, "error_code", "CF-NotFound"),
	)

	It("answers 400 CF-InvalidRequest when SSH is disabled, and records only granted accesses", func() {
		stub.AddApp("app-2", "app-2-pg", 1, false)
		status, body, err := get(context.Background(), "GET", "/internal/apps/app-2/ssh_access/0", "bearer tok-bob")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(400))
		Expect(body).To(HaveKeyWithValue("error_code", "CF-InvalidRequest"))
		Expect(stub.Events()).To(BeEmpty())

		Expect(stub.SetSSHEnabled("app-2", true)).To(BeTrue())
		Expect(stub.SetSSHEnabled("missing", true)).To(BeFalse())
		status, _, err = get(context.Background(), "GET", "/internal/apps/app-2/ssh_access/0", "bearer tok-bob")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(200))
		Expect(stub.Events()).To(Equal([]ccstub.Event{{AppGUID: "app-2", Index: 0, User: "bob"}}))

		stub.RemoveApp("app-2")
		status, _, err = get(context.Background(), "GET", "/internal/apps/app-2/ssh_access/0", "bearer tok-bob")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(404))
	})

	It("checks the index only in strict mode", func() {
		status, _, err := get(context.Background(), "GET", "/internal/apps/app-1/ssh_access/7", "bearer tok-alice")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(200))
		stub.SetStrictIndex(true)
		status, _, err = get(context.Background(), "GET", "/internal/apps/app-1/ssh_access/7", "bearer tok-alice")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(404))
	})

	It("injects faults and ends hanging requests on Close", func() {
		stub.SetMode(ccstub.ServerError)
		status, _, err := get(context.Background(), "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(500))

		stub.SetMode(ccstub.Down)
		_, _, err = get(context.Background(), "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice")
		Expect(err).To(HaveOccurred())

		stub.SetMode(ccstub.Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err = get(ctx, "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice")
		Expect(err).To(MatchError(context.DeadlineExceeded))

		errs := make(chan error, 1)
		go func() {
			_, _, err := get(context.Background(), "GET", "/internal/apps/app-1/ssh_access/0", "bearer tok-alice")
			errs <- err
		}()
		Eventually(stub.Requests, 5*time.Second, 10*time.Millisecond).Should(Equal(4))
		stub.Close()
		Eventually(errs, 5*time.Second).Should(Receive(HaveOccurred()))
	})
})
