package bbs_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/peer"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/tlsfiles"
)

type tlsFiles struct{ ca, cert, key string }

func writeClientFiles(dir string, ca *certs.CA, clientCA *certs.CA) tlsFiles {
	kp, err := clientCA.Issue("ssh-proxy")
	Expect(err).NotTo(HaveOccurred())
	cert, key, err := kp.WriteFiles(dir, "client")
	Expect(err).NotTo(HaveOccurred())
	caFile, err := ca.WriteFile(dir, "bbs-ca")
	Expect(err).NotTo(HaveOccurred())
	return tlsFiles{ca: caFile, cert: cert, key: key}
}

// mtls loads the files as the proxy does.
func mtls(f tlsFiles) *tls.Config {
	pool, err := tlsfiles.CertPool(f.ca)
	Expect(err).NotTo(HaveOccurred())
	pair, err := tlsfiles.KeyPair(f.cert, f.key)
	Expect(err).NotTo(HaveOccurred())
	return tlsfiles.Client(pool, &pair)
}

var _ = Describe("Client against the BBS stand-in", func() {
	var (
		ca         *certs.CA
		stub       *bbsstub.Server
		files      tlsFiles
		client     *bbs.Client
		goroutines int
	)

	newClient := func(f tlsFiles, serverName string) *bbs.Client {
		c, err := bbs.NewClient(bbs.Config{
			Address: stub.URL(), TLS: mtls(f),
			ServerName: serverName, Timeout: 5 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)
		return c
	}

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		var err error
		ca, err = certs.NewCA("bbs-ca")
		Expect(err).NotTo(HaveOccurred())
		serverKP, err := ca.Issue("bbs.service.cf.internal", "bbs.service.cf.internal", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		stub = bbsstub.New(certs.ServerTLS(serverKP, ca.Pool()))
		files = writeClientFiles(GinkgoT().TempDir(), ca, ca)
		client = newClient(files, "")
	})

	AfterEach(func() {
		stub.Close()
		client.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	It("lists the actual LRPs at an index", func() {
		running := bbs.ActualLRP{Index: 0, InstanceGUID: "i-0", CellID: "cell-a", State: bbs.StateRunning, Address: "10.0.0.5",
			InstanceAddress: "10.255.0.9", PreferredAddress: bbs.PreferredAddressHost,
			Ports: []bbs.PortMapping{{ContainerPort: 2222, HostPort: 61002, ContainerTLSProxyPort: 61443, HostTLSProxyPort: 61003}}}
		other := bbs.ActualLRP{Index: 1, InstanceGUID: "i-1", State: bbs.StateClaimed}
		stub.SetActualLRPs("pg-1", running, other)
		stub.SetActualLRPs("pg-2", bbs.ActualLRP{Index: 0, State: bbs.StateRunning})

		lrps, err := client.ActualLRPs(context.Background(), "pg-1", 0)
		Expect(err).NotTo(HaveOccurred())
		running.ProcessGUID = "pg-1"
		Expect(lrps).To(Equal([]bbs.ActualLRP{running}))

		lrps, err = client.ActualLRPs(context.Background(), "pg-1", 5)
		Expect(err).NotTo(HaveOccurred())
		Expect(lrps).To(BeEmpty())

		lrps, err = client.ActualLRPs(context.Background(), "pg-1", -1)
		Expect(err).NotTo(HaveOccurred())
		Expect(lrps).To(HaveLen(2))

		reqs := stub.Requests()
		Expect(reqs).To(HaveLen(3))
		Expect(reqs[0].Path).To(Equal("/v1/actual_lrps/list"))
		Expect(reqs[0].ProcessGUID).To(Equal("pg-1"))
		Expect(reqs[0].Index).To(HaveValue(Equal(int32(0))))
		Expect(reqs[2].Index).To(BeNil())
	})

	It("fetches a desired LRP's routes, and maps a missing one to ResourceNotFound", func() {
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg-1", Routes: map[string][]byte{
			"diego-ssh": []byte(`{"container_port":2222,"private_key":"k","host_fingerprint":"aa"}`),
			"cf-router": []byte(`[]`),
		}})
		d, err := client.DesiredLRPByProcessGUID(context.Background(), "pg-1")
		Expect(err).NotTo(HaveOccurred())
		route, err := d.SSHRoute()
		Expect(err).NotTo(HaveOccurred())
		Expect(route.ContainerPort).To(Equal(uint32(2222)))
		Expect(stub.Requests()[0].Path).To(Equal("/v1/desired_lrps/get_by_process_guid.r3"))

		_, err = client.DesiredLRPByProcessGUID(context.Background(), "nope")
		Expect(err).To(MatchError(bbs.ErrResourceNotFound))
		var bbsErr *bbs.Error
		Expect(errors.As(err, &bbsErr)).To(BeTrue())

		stub.RemoveDesiredLRP("pg-1")
		_, err = client.DesiredLRPByProcessGUID(context.Background(), "pg-1")
		Expect(err).To(MatchError(bbs.ErrResourceNotFound))
	})

	It("returns the BBS's error when it answers 200 with Error set", func() {
		stub.SetActualLRPs("pg-1", bbs.ActualLRP{State: bbs.StateRunning})
		stub.SetMode(bbsstub.ErrorResponse)
		stub.SetErrorResponse(bbs.Error{Type: bbs.Deadlock, Message: "db deadlock"})
		_, err := client.ActualLRPs(context.Background(), "pg-1", 0)
		Expect(err).To(Equal(&bbs.Error{Type: bbs.Deadlock, Message: "db deadlock"}))
		Expect(err).To(MatchError("BBS error Deadlock: db deadlock"))
		_, err = client.DesiredLRPByProcessGUID(context.Background(), "pg-1")
		Expect(err).To(MatchError(&bbs.Error{Type: bbs.Deadlock}))
	})

	DescribeTable("maps faults to UnavailableError",
		func(mode bbsstub.Mode, want string) {
			stub.SetMode(mode)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := client.ActualLRPs(ctx, "pg-1", 0)
			var unavailable *peer.UnavailableError
			Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(HavePrefix("BBS unavailable: "))
			Expect(err.Error()).To(ContainSubstring(want))
		},
		Entry("plain-text 500", bbsstub.ServerError, "HTTP 500"),
		Entry("hang", bbsstub.Hang, "timed out"),
		Entry("down", bbsstub.Down, ""),
	)

	It("is refused without a client certificate from the BBS's CA", func() {
		stranger, err := certs.NewCA("stranger")
		Expect(err).NotTo(HaveOccurred())
		bad := newClient(writeClientFiles(GinkgoT().TempDir(), ca, stranger), "")
		_, err = bad.ActualLRPs(context.Background(), "pg-1", 0)
		var unavailable *peer.UnavailableError
		Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
		Expect(stub.Requests()).To(BeEmpty())
	})

	It("does not trust a BBS certificate outside its CA file", func() {
		stranger, err := certs.NewCA("stranger")
		Expect(err).NotTo(HaveOccurred())
		bad := newClient(writeClientFiles(GinkgoT().TempDir(), stranger, ca), "")
		_, err = bad.ActualLRPs(context.Background(), "pg-1", 0)
		Expect(err).To(MatchError(ContainSubstring("BBS unavailable: TLS")))
		Expect(stub.Requests()).To(BeEmpty())
	})

	It("checks the configured server name", func() {
		_, err := newClient(files, "bbs.service.cf.internal").ActualLRPs(context.Background(), "pg-1", 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = newClient(files, "elsewhere.example.com").ActualLRPs(context.Background(), "pg-1", 0)
		Expect(err).To(MatchError(ContainSubstring("BBS unavailable: TLS")))
	})

	It("reports a closed BBS as unavailable", func() {
		stub.Close()
		_, err := client.DesiredLRPByProcessGUID(context.Background(), "pg-1")
		var unavailable *peer.UnavailableError
		Expect(errors.As(err, &unavailable)).To(BeTrue(), "got %v", err)
	})
})

var _ = Describe("Client HTTP edge cases", func() {
	var (
		srv     *httptest.Server
		handler http.HandlerFunc
		client  *bbs.Client
	)

	BeforeEach(func() {
		ca, err := certs.NewCA("edge")
		Expect(err).NotTo(HaveOccurred())
		kp, err := ca.Issue("bbs", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r) }))
		srv.TLS = certs.ServerTLS(kp, ca.Pool())
		srv.StartTLS()
		f := writeClientFiles(GinkgoT().TempDir(), ca, ca)
		client, err = bbs.NewClient(bbs.Config{Address: srv.URL, TLS: mtls(f)})
		Expect(err).NotTo(HaveOccurred())
	})
	AfterEach(func() {
		client.Close()
		srv.Close()
	})

	It("sends protobuf with BBS's headers", func() {
		var got *http.Request
		handler = func(w http.ResponseWriter, r *http.Request) {
			got = r
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(bbs.ActualLRPsResponse{}.MarshalProto())
		}
		_, err := client.ActualLRPs(context.Background(), "pg", 2)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Method).To(Equal(http.MethodPost))
		Expect(got.Header.Get("Content-Type")).To(Equal("application/x-protobuf"))
		Expect(got.Header.Get("X-Vcap-Request-Id")).To(MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`))
	})

	DescribeTable("maps answers",
		func(h http.HandlerFunc, check func(error)) {
			handler = h
			_, err := client.ActualLRPs(context.Background(), "pg", 0)
			check(err)
		},
		Entry("non-200 with a protobuf response carrying an Error", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(bbs.ActualLRPsResponse{Error: &bbs.Error{Type: bbs.Unrecoverable, Message: "boom"}}.MarshalProto())
		}), func(err error) { Expect(err).To(Equal(&bbs.Error{Type: bbs.Unrecoverable, Message: "boom"})) }),
		Entry("non-200 with a bare protobuf Error", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write((&bbs.Error{Type: bbs.Timeout, Message: "slow"}).MarshalProto())
		}), func(err error) { Expect(err).To(Equal(&bbs.Error{Type: bbs.Timeout, Message: "slow"})) }),
		Entry("router error header", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Cf-Router-Error", "unknown_route")
			w.WriteHeader(http.StatusNotFound)
		}), func(err error) { Expect(err).To(Equal(&bbs.Error{Type: bbs.RouterError, Message: "unknown_route"})) }),
		Entry("plain 404", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }),
			func(err error) {
				Expect(err).To(MatchError("BBS unavailable: endpoint /v1/actual_lrps/list not found (HTTP 404)"))
			}),
		Entry("200 without protobuf", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{}`))
		}), func(err error) {
			Expect(err).To(MatchError(`BBS unavailable: unexpected content type "application/json"`))
		}),
		Entry("undecodable protobuf", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write([]byte{0x12, 0x7f, 0x01})
		}), func(err error) { Expect(err).To(MatchError("BBS unavailable: undecodable ActualLRPsResponse")) }),
	)

	It("treats a desired-LRP answer without a desired LRP as not found", func() {
		handler = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(nil)
		}
		_, err := client.DesiredLRPByProcessGUID(context.Background(), "pg")
		Expect(err).To(MatchError(bbs.ErrResourceNotFound))
	})
})

var _ = Describe("NewClient", func() {
	var dir string
	var f tlsFiles

	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		ca, err := certs.NewCA("cfg")
		Expect(err).NotTo(HaveOccurred())
		f = writeClientFiles(dir, ca, ca)
	})

	cfg := func(mod func(*bbs.Config)) bbs.Config {
		c := bbs.Config{Address: "https://bbs.service.cf.internal:8889", TLS: mtls(f)}
		mod(&c)
		return c
	}

	It("accepts a complete configuration", func() {
		c, err := bbs.NewClient(cfg(func(*bbs.Config) {}))
		Expect(err).NotTo(HaveOccurred())
		c.Close()
	})

	It("requires https and mutual TLS", func() {
		_, err := bbs.NewClient(cfg(func(c *bbs.Config) { c.Address = "http://" + net.JoinHostPort("127.0.0.1", "8889") }))
		Expect(err).To(MatchError(ContainSubstring("not an https URL")))
		_, err = bbs.NewClient(cfg(func(c *bbs.Config) { c.TLS = nil }))
		Expect(err).To(HaveOccurred())
		_, err = bbs.NewClient(cfg(func(c *bbs.Config) { c.TLS.Certificates = nil }))
		Expect(err).To(HaveOccurred())
		_, err = bbs.NewClient(cfg(func(c *bbs.Config) { c.TLS.RootCAs = nil }))
		Expect(err).To(HaveOccurred())
	})
})
