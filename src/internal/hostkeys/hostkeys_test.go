package hostkeys_test

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/hostkeys"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// goClient logs in to srv with x/crypto's client and returns the connection and the payload of
// the hostkeys-00 announcement it received.
func goClient(srv *testServer, user ssh.Signer, hostKeyAlgos ...string) (ssh.Conn, []byte) {
	nc, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
	Expect(err).NotTo(HaveOccurred())
	cfg := &ssh.ClientConfig{
		User:              "someone",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(user)},
		HostKeyCallback:   ssh.InsecureIgnoreHostKey(),
		HostKeyAlgorithms: hostKeyAlgos,
		Timeout:           5 * time.Second,
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	conn, chans, reqs, err := ssh.NewClientConn(nc, srv.Addr, cfg)
	Expect(err).NotTo(HaveOccurred())
	_ = nc.SetDeadline(time.Time{})
	go func() {
		for nch := range chans {
			_ = nch.Reject(ssh.Prohibited, "no")
		}
	}()
	var announced []byte
	select {
	case req := <-reqs:
		Expect(req.Type).To(Equal(hostkeys.RequestAnnounce))
		Expect(req.WantReply).To(BeFalse())
		announced = req.Payload
	case <-time.After(10 * time.Second):
		Fail("no hostkeys-00 announcement within 10s")
	}
	go ssh.DiscardRequests(reqs)
	DeferCleanup(conn.Close)
	return conn, announced
}

func blobs(keys []ssh.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, string(k.Marshal()))
	}
	return out
}

var _ = Describe("Announcer", func() {
	var user ssh.Signer
	BeforeEach(func() { user = newEd25519() })

	It("announces current then next keys once each, and proves the ones asked for", func() {
		cur, next := newEd25519(), newRSA()
		ann := hostkeys.New([]ssh.Signer{cur, cur}, []ssh.Signer{next, cur, nil})
		Expect(blobs(ann.Keys())).To(Equal(blobs([]ssh.PublicKey{cur.PublicKey(), next.PublicKey()})))

		srv := startServer([]ssh.Signer{cur}, ann, user.PublicKey())
		DeferCleanup(srv.Close)
		conn, payload := goClient(srv, user)

		keys, err := hostkeys.ParseKeys(payload)
		Expect(err).NotTo(HaveOccurred())
		Expect(blobs(keys)).To(Equal(blobs(ann.Keys())))

		ok, reply, err := conn.SendRequest(hostkeys.RequestProve, true, hostkeys.ProvePayload([]ssh.PublicKey{next.PublicKey(), cur.PublicKey()}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		sigs, err := hostkeys.ParseSignatures(reply)
		Expect(err).NotTo(HaveOccurred())
		Expect(sigs).To(HaveLen(2))
		alg := hostkeys.NegotiatedHostKeyAlgorithm(conn)
		Expect(alg).To(Equal(ssh.KeyAlgoED25519))
		Expect(sigs[0].Format).To(Equal(ssh.KeyAlgoRSASHA512))
		Expect(hostkeys.VerifyProof(conn.SessionID(), alg, next.PublicKey(), sigs[0])).To(Succeed())
		Expect(hostkeys.VerifyProof(conn.SessionID(), alg, cur.PublicKey(), sigs[1])).To(Succeed())

		By("a proof does not verify for another session or another key")
		other := append([]byte{}, conn.SessionID()...)
		other[0] ^= 1
		Expect(hostkeys.VerifyProof(other, alg, next.PublicKey(), sigs[0])).NotTo(Succeed())
		Expect(hostkeys.VerifyProof(conn.SessionID(), alg, cur.PublicKey(), sigs[0])).NotTo(Succeed())
		Expect(srv.Proves.Load()).To(BeEquivalentTo(1))
	})

	DescribeTable("signs RSA proofs with the RSA algorithm negotiated for the host key",
		func(negotiate string) {
			cur, next := newRSA(), newRSA()
			ann := hostkeys.New([]ssh.Signer{cur}, []ssh.Signer{next})
			srv := startServer([]ssh.Signer{cur}, ann, user.PublicKey())
			DeferCleanup(srv.Close)
			conn, _ := goClient(srv, user, negotiate)
			Expect(hostkeys.NegotiatedHostKeyAlgorithm(conn)).To(Equal(negotiate))

			ok, reply, err := conn.SendRequest(hostkeys.RequestProve, true, hostkeys.ProvePayload([]ssh.PublicKey{next.PublicKey()}))
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeTrue())
			sigs, err := hostkeys.ParseSignatures(reply)
			Expect(err).NotTo(HaveOccurred())
			Expect(sigs).To(HaveLen(1))
			Expect(sigs[0].Format).To(Equal(negotiate))
			Expect(hostkeys.VerifyProof(conn.SessionID(), negotiate, next.PublicKey(), sigs[0])).To(Succeed())
		},
		Entry("rsa-sha2-256", ssh.KeyAlgoRSASHA256),
		Entry("rsa-sha2-512", ssh.KeyAlgoRSASHA512),
	)

	It("refuses a prove request naming a key it does not hold, or a malformed one", func() {
		cur := newEd25519()
		srv := startServer([]ssh.Signer{cur}, hostkeys.New([]ssh.Signer{cur}, nil), user.PublicKey())
		DeferCleanup(srv.Close)
		conn, _ := goClient(srv, user)

		stranger := newEd25519().PublicKey()
		ok, _, err := conn.SendRequest(hostkeys.RequestProve, true, hostkeys.ProvePayload([]ssh.PublicKey{cur.PublicKey(), stranger}))
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		truncated := hostkeys.ProvePayload([]ssh.PublicKey{cur.PublicKey()})
		ok, _, err = conn.SendRequest(hostkeys.RequestProve, true, truncated[:len(truncated)-1])
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		ok, _, err = conn.SendRequest(hostkeys.RequestProve, true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())

		By("leaving other global requests to the caller")
		ok, _, err = conn.SendRequest("keepalive@openssh.com", true, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
		Expect(srv.Proves.Load()).To(BeEquivalentTo(3))
	})

	It("reports whether it handled a request", func() {
		ann := hostkeys.New([]ssh.Signer{newEd25519()}, nil)
		Expect(ann.HandleRequest(nil, &ssh.Request{Type: "tcpip-forward"})).To(BeFalse())
		Expect(ann.HandleRequest(nil, &ssh.Request{Type: hostkeys.RequestAnnounce})).To(BeTrue())
	})

	It("sends nothing when it has no keys", func() {
		ann := hostkeys.New(nil, nil)
		Expect(ann.Keys()).To(BeEmpty())
		Expect(ann.Announce(nil)).To(Succeed())
	})

	It("builds the announcement as SSH strings of key blobs", func() {
		k := newEd25519()
		p := hostkeys.New([]ssh.Signer{k}, nil).Payload()
		blob := k.PublicKey().Marshal()
		Expect(binary.BigEndian.Uint32(p)).To(BeEquivalentTo(len(blob)))
		Expect(p[4:]).To(Equal(blob))
	})
})

var _ = Describe("Prove with signers restricted to some algorithms", func() {
	It("uses rsa-sha2-256 when the signer may not use rsa-sha2-512 and the client takes either", func() {
		rs := newRSA()
		restricted, err := ssh.NewSignerWithAlgorithms(rs.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSASHA256})
		Expect(err).NotTo(HaveOccurred())
		ann := hostkeys.New([]ssh.Signer{restricted}, nil)
		session := []byte("session")
		for _, negotiated := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA256} {
			reply, err := ann.Prove(session, negotiated, hostkeys.ProvePayload([]ssh.PublicKey{rs.PublicKey()}))
			Expect(err).NotTo(HaveOccurred())
			sigs, err := hostkeys.ParseSignatures(reply)
			Expect(err).NotTo(HaveOccurred())
			Expect(sigs).To(HaveLen(1))
			Expect(sigs[0].Format).To(Equal(ssh.KeyAlgoRSASHA256))
			Expect(hostkeys.VerifyProof(session, negotiated, rs.PublicKey(), sigs[0])).To(Succeed())
		}
		By("but never an algorithm other than the negotiated RSA one")
		_, err = ann.Prove(session, ssh.KeyAlgoRSASHA512, hostkeys.ProvePayload([]ssh.PublicKey{rs.PublicKey()}))
		Expect(err).To(HaveOccurred())
	})
})

var _ = Describe("IsProtocolRequest", func() {
	It("names the two requests of the protocol only", func() {
		Expect(hostkeys.IsProtocolRequest(hostkeys.RequestAnnounce)).To(BeTrue())
		Expect(hostkeys.IsProtocolRequest(hostkeys.RequestProve)).To(BeTrue())
		Expect(hostkeys.IsProtocolRequest("keepalive@openssh.com")).To(BeFalse())
		Expect(hostkeys.IsProtocolRequest("tcpip-forward")).To(BeFalse())
	})
})

var _ = Describe("SignatureAlgorithm", func() {
	DescribeTable("picks the algorithm a client verifies",
		func(keyType, negotiated, want string) {
			Expect(hostkeys.SignatureAlgorithm(keyType, negotiated)).To(Equal(want))
		},
		Entry("RSA key, rsa-sha2-256 negotiated", ssh.KeyAlgoRSA, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA256),
		Entry("RSA key, RSA cert negotiated", ssh.KeyAlgoRSA, ssh.CertAlgoRSASHA256v01, ssh.KeyAlgoRSASHA256),
		Entry("RSA key, ssh-rsa negotiated", ssh.KeyAlgoRSA, ssh.KeyAlgoRSA, ssh.KeyAlgoRSA),
		Entry("RSA key, ed25519 negotiated", ssh.KeyAlgoRSA, ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512),
		Entry("RSA key, unknown", ssh.KeyAlgoRSA, "", ssh.KeyAlgoRSASHA512),
		Entry("ed25519 key", ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA256, ""),
		Entry("ECDSA key", ssh.KeyAlgoECDSA256, "", ""),
	)
})

var _ = Describe("LoadFiles and ParsePEM", func() {
	It("loads PEM keys, tolerating surrounding blank space, and names the failing path", func() {
		dir := GinkgoT().TempDir()
		k := newEd25519()
		block, err := ssh.MarshalPrivateKey(mustPrivate(k), "")
		Expect(err).NotTo(HaveOccurred())
		good := filepath.Join(dir, "good")
		Expect(os.WriteFile(good, append(append([]byte("\n  "), pemEncode(block)...), "\n\n"...), 0o600)).To(Succeed())
		bad := filepath.Join(dir, "bad")
		Expect(os.WriteFile(bad, []byte("not a key"), 0o600)).To(Succeed())

		signers, err := hostkeys.LoadFiles([]string{good})
		Expect(err).NotTo(HaveOccurred())
		Expect(signers).To(HaveLen(1))
		Expect(signers[0].PublicKey().Marshal()).To(Equal(k.PublicKey().Marshal()))

		_, err = hostkeys.LoadFiles([]string{good, bad, filepath.Join(dir, "missing")})
		Expect(err).To(MatchError(ContainSubstring(bad)))
		Expect(err).To(MatchError(ContainSubstring("missing")))

		_, err = hostkeys.ParsePEM([]byte("  \n"))
		Expect(err).To(MatchError(ContainSubstring("empty")))
	})
})
