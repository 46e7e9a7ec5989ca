package bbsstub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

var _ = Describe("BBS stand-in", func() {
	var (
		ca         *certs.CA
		stub       *bbsstub.Server
		hc         *http.Client
		goroutines int
	)

	httpClient := func(cfg *tls.Config) *http.Client {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		DeferCleanup(c.CloseIdleConnections)
		return c
	}

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		var err error
		ca, err = certs.NewCA("bbs")
		Expect(err).NotTo(HaveOccurred())
		server, err := ca.Issue("bbs", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		client, err := ca.Issue("client")
		Expect(err).NotTo(HaveOccurred())
		stub = bbsstub.New(certs.ServerTLS(server, ca.Pool()))
		hc = httpClient(certs.ClientTLS(ca.Pool(), client))
	})
	AfterEach(func() {
		stub.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	post := func(ctx context.Context, c *http.Client, path string, body []byte) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, stub.URL()+path, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	It("serves actual LRPs as protobuf, filtered by process guid and index", func() {
		stub.SetActualLRPs("pg", bbs.ActualLRP{Index: 0, State: bbs.StateRunning, InstanceGUID: "a"},
			bbs.ActualLRP{Index: 1, State: bbs.StateCrashed, InstanceGUID: "b"})
		one := int32(1)
		resp, body, err := post(context.Background(), hc, "/v1/actual_lrps/list", bbs.ActualLRPsRequest{ProcessGUID: "pg", Index: &one}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(200))
		Expect(resp.Header.Get("Content-Type")).To(Equal("application/x-protobuf"))
		decoded, err := bbs.UnmarshalActualLRPsResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.ActualLRPs).To(Equal([]bbs.ActualLRP{{ProcessGUID: "pg", Index: 1, State: bbs.StateCrashed, InstanceGUID: "b"}}))

		_, body, err = post(context.Background(), hc, "/v1/actual_lrps/list", bbs.ActualLRPsRequest{ProcessGUID: "other"}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		decoded, err = bbs.UnmarshalActualLRPsResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.ActualLRPs).To(BeEmpty())
		Expect(decoded.Error).To(BeNil())
	})

	It("serves desired LRPs and answers ResourceNotFound for unknown ones", func() {
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{"diego-ssh": []byte(`{"container_port":2222}`)}})
		_, body, err := post(context.Background(), hc, "/v1/desired_lrps/get_by_process_guid.r3", bbs.DesiredLRPByProcessGUIDRequest{ProcessGUID: "pg"}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		decoded, err := bbs.UnmarshalDesiredLRPResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.DesiredLRP.Routes).To(HaveKeyWithValue("diego-ssh", []byte(`{"container_port":2222}`)))

		resp, body, err := post(context.Background(), hc, "/v1/desired_lrps/get_by_process_guid.r3", bbs.DesiredLRPByProcessGUIDRequest{ProcessGUID: "x"}.MarshalProto())
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(200))
		decoded, err = bbs.UnmarshalDesiredLRPResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.Error).To(HaveField("Type", bbs.ResourceNotFound))

		Expect(stub.Requests()).To(Equal([]bbsstub.Request{
			{Path: "/v1/desired_lrps/get_by_process_guid.r3", ProcessGUID: "pg"},
			{Path: "/v1/desired_lrps/get_by_process_guid.r3", ProcessGUID: "x"},
		}))
	})

	It("answers garbage requests with an InvalidProtobufMessage error and unknown routes with 404", func() {
		_, body, err := post(context.Background(), hc, "/v1/actual_lrps/list", []byte{0x1a, 0x7f})
		Expect(err).NotTo(HaveOccurred())
		decoded, err := bbs.UnmarshalActualLRPsResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.Error).To(HaveField("Type", bbs.InvalidProtobufMessage))

		resp, _, err := post(context.Background(), hc, "/v1/desired_lrps/get_by_process_guid.r2", nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(404))
	})

	It("requires a client certificate signed by its CA", func() {
		_, _, err := post(context.Background(), httpClient(certs.ClientTLS(ca.Pool(), nil)), "/v1/actual_lrps/list", nil)
		Expect(err).To(HaveOccurred())
		stranger, err := certs.NewCA("stranger")
		Expect(err).NotTo(HaveOccurred())
		kp, err := stranger.Issue("client")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = post(context.Background(), httpClient(certs.ClientTLS(ca.Pool(), kp)), "/v1/actual_lrps/list", nil)
		Expect(err).To(HaveOccurred())
		Expect(stub.Requests()).To(BeEmpty())
	})

	It("refuses to start without client CAs", func() {
		kp, err := ca.Issue("bbs", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		Expect(func() { bbsstub.New(certs.ServerTLS(kp, nil)) }).To(Panic())
		Expect(func() { bbsstub.New(nil) }).To(Panic())
	})

	It("injects faults", func() {
		stub.SetActualLRPs("pg", bbs.ActualLRP{State: bbs.StateRunning})
		req := bbs.ActualLRPsRequest{ProcessGUID: "pg"}.MarshalProto()

		stub.SetMode(bbsstub.ErrorResponse)
		stub.SetErrorResponse(bbs.Error{Type: bbs.Timeout, Message: "t"})
		resp, body, err := post(context.Background(), hc, "/v1/actual_lrps/list", req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(200))
		decoded, err := bbs.UnmarshalActualLRPsResponse(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(decoded.Error).To(Equal(&bbs.Error{Type: bbs.Timeout, Message: "t"}))
		Expect(decoded.ActualLRPs).To(BeEmpty())

		stub.SetMode(bbsstub.ServerError)
		resp, _, err = post(context.Background(), hc, "/v1/actual_lrps/list", req)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.StatusCode).To(Equal(500))

		stub.SetMode(bbsstub.Down)
		_, _, err = post(context.Background(), hc, "/v1/actual_lrps/list", req)
		Expect(err).To(HaveOccurred())

		stub.SetMode(bbsstub.Hang)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, _, err = post(ctx, hc, "/v1/actual_lrps/list", req)
		Expect(err).To(MatchError(context.DeadlineExceeded))

		errs := make(chan error, 1)
		go func() {
			_, _, err := post(context.Background(), hc, "/v1/actual_lrps/list", req)
			errs <- err
		}()
		Consistently(errs, 100*time.Millisecond).ShouldNot(Receive())
		stub.Close()
		Eventually(errs, 5*time.Second).Should(Receive(HaveOccurred()))
	})
})
