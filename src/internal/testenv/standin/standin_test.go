package standin_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/testenv/standin"
)

// faults is a Fault source the tests switch, counting how often it was asked.
type faults struct {
	mu    sync.Mutex
	f     standin.Fault
	asked int
}

func (f *faults) set(v standin.Fault) { f.mu.Lock(); f.f = v; f.mu.Unlock() }
func (f *faults) count() int          { f.mu.Lock(); defer f.mu.Unlock(); return f.asked }
func (f *faults) next() standin.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.f
}

var _ = Describe("stand-in server core", func() {
	var (
		goroutines int
		fs         *faults
		handled    atomic.Int32
		srv        *standin.Server
		hc         *http.Client
	)

	normal := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		_, _ = io.WriteString(w, "normal "+r.URL.Path)
	})
	teapot := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "my own failure")
	})

	get := func(ctx context.Context, url string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		fs = &faults{}
		handled.Store(0)
		srv = standin.Start(standin.Options{Name: "test", Fault: fs.next, Handler: normal, ServerError: teapot})
		hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	})
	AfterEach(func() {
		hc.CloseIdleConnections()
		srv.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	It("serves plain http on 127.0.0.1 and hands normal requests to the handler", func() {
		Expect(srv.URL()).To(Equal("http://" + srv.Addr()))
		Expect(srv.Addr()).To(HavePrefix("127.0.0.1:"))
		status, body, err := get(context.Background(), srv.URL()+"/x")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusOK))
		Expect(body).To(Equal("normal /x"))
		Expect(fs.count()).To(Equal(1))
	})

	It("serves https with the given TLS config", func() {
		ca, err := certs.NewCA("standin")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("standin", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		tlsSrv := standin.Start(standin.Options{Name: "tls", TLS: certs.ServerTLS(kp, nil), Handler: normal})
		defer tlsSrv.Close()
		Expect(tlsSrv.URL()).To(Equal("https://" + tlsSrv.Addr()))

		tc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(ca.Pool(), nil)}}
		defer tc.CloseIdleConnections()
		resp, err := tc.Get(tlsSrv.URL() + "/secure")
		Expect(err).NotTo(HaveOccurred())
		b, err := io.ReadAll(resp.Body)
		Expect(resp.Body.Close()).To(Succeed())
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(Equal("normal /secure"))

		_, _, err = get(context.Background(), strings.Replace(tlsSrv.URL(), "https:", "http:", 1))
		Expect(err).NotTo(HaveOccurred(), "a plain request is answered 400 by net/http, not served")
		Expect(handled.Load()).To(Equal(int32(1)))
	})

	It("answers ServerError with the stand-in's own answer", func() {
		fs.set(standin.ServerError)
		status, body, err := get(context.Background(), srv.URL())
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusTeapot))
		Expect(body).To(Equal("my own failure"))
		Expect(handled.Load()).To(BeZero())
	})

	It("answers ServerError with a bare 500 when the stand-in gives no answer", func() {
		bare := standin.Start(standin.Options{Fault: func() standin.Fault { return standin.ServerError }, Handler: normal})
		defer bare.Close()
		status, _, err := get(context.Background(), bare.URL())
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusInternalServerError))
		Expect(handled.Load()).To(BeZero())
	})

	It("drops the connection in Down", func() {
		fs.set(standin.Down)
		_, _, err := get(context.Background(), srv.URL())
		Expect(err).To(HaveOccurred())
		Expect(handled.Load()).To(BeZero())

		fs.set(standin.None)
		status, _, err := get(context.Background(), srv.URL())
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusOK))
	})

	It("holds a request in Hang until the client gives up", func() {
		fs.set(standin.Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err := get(ctx, srv.URL())
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(handled.Load()).To(BeZero())
	})

	It("ends hanging requests on Close and serves nothing afterwards", func() {
		fs.set(standin.Hang)
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, _, err := get(context.Background(), srv.URL())
				errs <- err
			}()
		}
		Eventually(fs.count, 5*time.Second, 10*time.Millisecond).Should(Equal(2))
		Consistently(errs, 100*time.Millisecond).ShouldNot(Receive())

		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Close()
		}()
		Eventually(done, 5*time.Second).Should(BeClosed())
		Eventually(errs, 5*time.Second).Should(Receive(HaveOccurred()))
		Eventually(errs, 5*time.Second).Should(Receive(HaveOccurred()))

		srv.Close() // a second Close is harmless
		fs.set(standin.None)
		_, _, err := get(context.Background(), srv.URL())
		Expect(err).To(HaveOccurred())
		Expect(fs.count()).To(Equal(2))
	})

	It("refuses to start without a handler", func() {
		Expect(func() { standin.Start(standin.Options{Name: "x"}) }).To(PanicWith(ContainSubstring("x: ")))
	})
})
