package target_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/bbs"
	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/target"
	"github.com/app-ssh/app-ssh/internal/testenv/bbsstub"
	"github.com/app-ssh/app-ssh/internal/testenv/certs"
)

// The route's host key (pinned by its SHA-256 fingerprint) and the key the proxy logs in with.
var (
	routeHostKey, _         = newKey()
	routeLoginKey, loginPEM = newKey()
	routeHostFP             = fingerprint.SHA256Base64(routeHostKey.PublicKey())
	routeJSON               = fmt.Sprintf(`{"container_port":2222,"host_fingerprint":"aa:bb","host_256_fingerprint":%q,"private_key":%q,"user":"u","password":"p","future_key":1}`,
		routeHostFP, loginPEM)
)

func newKey() (ssh.Signer, string) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	block, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		panic(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		panic(err)
	}
	return s, string(pem.EncodeToMemory(block))
}

func instanceError(err error) *target.InstanceError {
	var ie *target.InstanceError
	ExpectWithOffset(1, errors.As(err, &ie)).To(BeTrue(), "%v", err)
	return ie
}

var _ = Describe("the diego-ssh route (bbs.SSHRoute, the one route model)", func() {
	It("reads diego-ssh's keys, ignores unknown ones, and pins the SHA-256 fingerprint first", func() {
		r, err := (&bbs.DesiredLRP{Routes: map[string][]byte{"diego-ssh": []byte(routeJSON)}}).SSHRoute()
		Expect(err).NotTo(HaveOccurred())
		Expect(r).To(Equal(bbs.SSHRoute{ContainerPort: 2222, HostFingerprint: "aa:bb", Host256Fingerprint: routeHostFP, PrivateKey: loginPEM, User: "u", Password: "p"}))
		Expect(r.Fingerprint()).To(Equal(routeHostFP))
		r.Host256Fingerprint = ""
		Expect(r.Fingerprint()).To(Equal("aa:bb"))
	})
})

var _ = Describe("BBSResolver against the BBS stand-in", func() {
	var (
		stub     *bbsstub.Server
		client   *bbs.Client
		resolver *target.BBSResolver
		running  bbs.ActualLRP
	)

	BeforeEach(func() {
		ca, err := certs.NewCA("bbs-ca")
		Expect(err).NotTo(HaveOccurred())
		srv, err := ca.Issue("bbs", "127.0.0.1")
		Expect(err).NotTo(HaveOccurred())
		cli, err := ca.Issue("ssh-proxy")
		Expect(err).NotTo(HaveOccurred())
		stub = bbsstub.New(certs.ServerTLS(srv, ca.Pool()))
		client, err = bbs.NewClient(bbs.Config{Address: stub.URL(), TLS: certs.ClientTLS(ca.Pool(), cli), Timeout: 3 * time.Second})
		Expect(err).NotTo(HaveOccurred())
		resolver = &target.BBSResolver{BBS: client, Timeout: 3 * time.Second}

		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{
			"cf-router": []byte(`[]`), "diego-ssh": []byte(routeJSON),
		}})
		running = bbs.ActualLRP{
			ProcessGUID: "pg", Index: 1, InstanceGUID: "inst-1", CellID: "cell", State: bbs.StateRunning,
			Address: "10.0.0.1", InstanceAddress: "192.168.0.7",
			Ports: []bbs.PortMapping{
				{ContainerPort: 8080, HostPort: 61000, ContainerTLSProxyPort: 61443, HostTLSProxyPort: 61001},
				{ContainerPort: 2222, HostPort: 61002, ContainerTLSProxyPort: 61222, HostTLSProxyPort: 61003},
			},
		}
	})
	AfterEach(func() {
		client.Close()
		stub.Close()
	})

	resolve := func() (target.Target, error) {
		return resolver.Resolve(context.Background(), "pg", 1)
	}

	It("dials the host address and host port by default", func() {
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("10.0.0.1:61002"))
		Expect(t.TLS).To(BeNil())
		Expect(t.InstanceGUID).To(Equal("inst-1"))
		Expect([]string{t.Password, t.User}).To(Equal([]string{"p", "u"}))
		Expect(t.HostKey.Matches(routeHostKey.PublicKey())).To(BeTrue(), "the route's SHA-256 fingerprint, parsed")
		Expect(t.Signer.PublicKey().Marshal()).To(Equal(routeLoginKey.PublicKey().Marshal()), "the route's private key, parsed")
		Expect(t.Describe()).NotTo(ContainSubstring("PRIVATE KEY"))
	})

	It("reports a route whose fingerprint or key cannot be parsed as no usable SSH route, without echoing the key", func() {
		for _, route := range []string{
			`{"container_port":2222,"host_256_fingerprint":"not a fingerprint"}`,
			fmt.Sprintf(`{"container_port":2222,"host_256_fingerprint":%q,"private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nsecretstuff\n-----END OPENSSH PRIVATE KEY-----\n"}`, routeHostFP),
		} {
			stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{"diego-ssh": []byte(route)}})
			stub.SetActualLRPs("pg", running)
			_, err := resolve()
			Expect(err).To(MatchError(target.ErrNoSSHRoute), route)
			Expect(err.Error()).NotTo(ContainSubstring("secretstuff"))
		}
	})

	It("names the app's log stream: log_guid as source_id and the index as instance_id by default", func() {
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", LogGUID: "app-guid", Routes: map[string][]byte{"diego-ssh": []byte(routeJSON)}})
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.LogTags).To(Equal(map[string]string{"source_id": "app-guid", "instance_id": "1"}))
	})

	It("resolves the desired LRP's metric tags for the instance reached", func() {
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", LogGUID: "log-guid", Routes: map[string][]byte{"diego-ssh": []byte(routeJSON)},
			MetricTags: map[string]bbs.MetricTagValue{
				"source_id": {Static: "app-guid"}, "app_name": {Static: "myapp"},
				"instance_id": {Dynamic: bbs.MetricTagInstanceGUID}, "index": {Dynamic: bbs.MetricTagIndex},
				"broken": {Dynamic: 7},
			}})
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.LogTags).To(Equal(map[string]string{"source_id": "app-guid", "app_name": "myapp", "instance_id": "inst-1", "index": "1"}))
	})

	It("has no log stream when the desired LRP names none", func() {
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.LogTags).To(BeNil())
	})

	It("dials the instance address when the BBS prefers it", func() {
		running.PreferredAddress = bbs.PreferredAddressInstance
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("192.168.0.7:2222"))
	})

	It("dials the instance address for UNKNOWN only with connect_to_instance_address", func() {
		stub.SetActualLRPs("pg", running)
		resolver.ConnectToInstanceAddress = true
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("192.168.0.7:2222"))
		running.PreferredAddress = bbs.PreferredAddressHost
		stub.SetActualLRPs("pg", running)
		t, err = resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("10.0.0.1:61002"))
	})

	It("dials the TLS proxy port with the instance guid as server name", func() {
		resolver.BackendTLS = &tls.Config{ServerName: "ignored"}
		stub.SetActualLRPs("pg", running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("10.0.0.1:61003"))
		Expect(t.TLS.ServerName).To(Equal("inst-1"))
		Expect(resolver.BackendTLS.ServerName).To(Equal("ignored"))
		Expect(t.PlaintextAddress).To(BeEmpty())

		running.PreferredAddress = bbs.PreferredAddressInstance
		stub.SetActualLRPs("pg", running)
		resolver.AllowPlaintextFallback = true
		t, err = resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Address).To(Equal("192.168.0.7:61222"))
		Expect(t.PlaintextAddress).To(Equal("192.168.0.7:2222"))
	})

	It("refuses when TLS is on and the instance has no TLS port, unless fallback is allowed", func() {
		resolver.BackendTLS = &tls.Config{}
		running.Ports[1].HostTLSProxyPort = 0
		stub.SetActualLRPs("pg", running)
		_, err := resolve()
		Expect(err).To(MatchError(target.ErrNoTLSPort))
		resolver.AllowPlaintextFallback = true
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.TLS).To(BeNil())
		Expect(t.Address).To(Equal("10.0.0.1:61002"))
	})

	It("prefers the ORDINARY running instance over an EVACUATING one and ignores non-running ones", func() {
		evac := running
		evac.InstanceGUID, evac.Presence, evac.Address = "inst-old", bbs.PresenceEvacuating, "10.0.0.9"
		crashed := running
		crashed.InstanceGUID, crashed.State = "inst-crashed", bbs.StateCrashed
		stub.SetActualLRPs("pg", evac, crashed, running)
		t, err := resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.InstanceGUID).To(Equal("inst-1"))

		claimed := running
		claimed.State = bbs.StateClaimed
		stub.SetActualLRPs("pg", evac, claimed)
		t, err = resolve()
		Expect(err).NotTo(HaveOccurred())
		Expect(t.InstanceGUID).To(Equal("inst-old"))
		Expect(t.Address).To(Equal("10.0.0.9:61002"))
	})

	It("says the instance is not running", func() {
		c := running
		c.State = bbs.StateCrashed
		stub.SetActualLRPs("pg", c)
		_, err := resolve()
		Expect(instanceError(err).State).To(Equal(bbs.StateCrashed))
		Expect(instanceError(err).Missing()).To(BeFalse())
		stub.SetActualLRPs("pg")
		_, err = resolve()
		Expect(instanceError(err).State).To(BeEmpty())
	})

	It("says the index is beyond the desired instances, naming the app", func() {
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", Instances: 2, Routes: map[string][]byte{"diego-ssh": []byte(routeJSON)},
			MetricTags: map[string]bbs.MetricTagValue{"app_name": {Static: "my-app"}}})
		stub.SetActualLRPs("pg", running)
		_, err := resolver.Resolve(context.Background(), "pg", 3)
		ie := instanceError(err)
		Expect(ie.Missing()).To(BeTrue())
		Expect([]any{ie.Index, ie.Instances, ie.AppName}).To(Equal([]any{3, 2, "my-app"}))
	})

	It("says the app is not found, or has no SSH route", func() {
		_, err := resolver.Resolve(context.Background(), "other", 0)
		Expect(err).To(MatchError(target.ErrProcessNotFound))
		stub.SetDesiredLRP(bbs.DesiredLRP{ProcessGUID: "pg", Routes: map[string][]byte{"cf-router": []byte(`[]`)}})
		_, err = resolve()
		Expect(err).To(MatchError(target.ErrNoSSHRoute))
	})

	It("gives up on a BBS that does not answer within the timeout", func() {
		stub.SetActualLRPs("pg", running)
		stub.SetMode(bbsstub.Hang)
		resolver.Timeout = 200 * time.Millisecond
		_, err := resolve()
		Expect(err).To(MatchError(target.ErrBBSUnavailable))
	})

	It("says the BBS is unavailable", func() {
		stub.SetActualLRPs("pg", running)
		for _, m := range []bbsstub.Mode{bbsstub.Down, bbsstub.ServerError, bbsstub.ErrorResponse} {
			stub.SetMode(m)
			_, err := resolve()
			Expect(err).To(MatchError(target.ErrBBSUnavailable), "mode %d", m)
		}
	})
})
