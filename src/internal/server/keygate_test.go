package server_test

import (
	"context"
	"io"
	"runtime"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/login"
	"github.com/app-ssh/app-ssh/internal/server"
)

// claimingSigner offers one public key but signs with another private key.
type claimingSigner struct {
	claimed ssh.PublicKey
	real    ssh.Signer
}

func (c claimingSigner) PublicKey() ssh.PublicKey { return c.claimed }
func (c claimingSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return c.real.Sign(r, data)
}

var _ = Describe("Server with static targets (public-key logins)", func() {
	var (
		sshd       *echoSSHD
		alice, bob ssh.Signer
		cancel     context.CancelFunc
		served     chan error
		goroutines int
	)

	start := func(keys bool) *server.Server {
		loginKey, _ := newSigner()
		st, err := login.NewStatic([]login.StaticTarget{{Name: "web", Addresses: []string{sshd.ln.Addr().String()},
			HostKey: fingerprint.Compute(fingerprint.SHA256, sshd.host.PublicKey()), Signer: loginKey,
			AuthorizedKeys: []ssh.PublicKey{alice.PublicKey()}}}, nil)
		Expect(err).NotTo(HaveOccurred())
		gate := &login.Login{Diego: &login.Diego{Credentials: []byte("x")}, DialTimeout: 5 * time.Second}
		if keys {
			gate.Static = st
		}
		hostKey, _ := newSigner()
		srv, err := server.New(server.Config{Address: "127.0.0.1:0", HostKeys: []ssh.Signer{hostKey}, HandshakeTimeout: 5 * time.Second}, gate)
		Expect(err).NotTo(HaveOccurred())
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		served = make(chan error, 1)
		go func() { served <- srv.Serve(ctx) }()
		return srv
	}

	dial := func(srv *server.Server, user string, signer ssh.Signer) (*ssh.Client, error) {
		return ssh.Dial("tcp", srv.Addr().String(), &ssh.ClientConfig{
			User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second,
		})
	}

	BeforeEach(func() {
		goroutines = runtime.NumGoroutine()
		sshd = startEchoSSHD()
		alice, _ = newSigner()
		bob, _ = newSigner()
	})

	AfterEach(func() {
		cancel()
		Eventually(served, 10*time.Second).Should(Receive(BeNil()))
		sshd.Close()
		Eventually(runtime.NumGoroutine, 5*time.Second, 20*time.Millisecond).Should(BeNumerically("<=", goroutines))
	})

	It("relays a session for an authorized key to the target's instance, pinning its host key", func() {
		srv := start(true)
		c, err := dial(srv, "web/0", alice)
		Expect(err).NotTo(HaveOccurred())
		defer c.Close()
		s, err := c.NewSession()
		Expect(err).NotTo(HaveOccurred())
		out, err := s.Output("via static target")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("via static target"))
	})

	It("refuses other keys, unknown indexes and keys the client cannot sign with", func() {
		srv := start(true)
		_, err := dial(srv, "web/0", bob)
		Expect(err).To(HaveOccurred())
		_, err = dial(srv, "web/1", alice)
		Expect(err).To(HaveOccurred())
		_, err = dial(srv, "web/0", claimingSigner{claimed: alice.PublicKey(), real: bob})
		Expect(err).To(HaveOccurred())
	})

	It("offers no public-key logins without static targets", func() {
		srv := start(false)
		_, err := dial(srv, "web/0", alice)
		Expect(err).To(MatchError(ContainSubstring("no supported methods remain")))
	})
})
