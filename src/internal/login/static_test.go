package login_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/fingerprint"
	"github.com/app-ssh/app-ssh/internal/login"
)

func newSigner() ssh.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	s, err := ssh.NewSignerFromKey(k)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// lyingSigner offers one public key but signs with another key: it holds only the public half
// of the key it claims.
type lyingSigner struct {
	claimed ssh.PublicKey
	real    ssh.Signer
}

func (l lyingSigner) PublicKey() ssh.PublicKey { return l.claimed }
func (l lyingSigner) Sign(r io.Reader, data []byte) (*ssh.Signature, error) {
	return l.real.Sign(r, data)
}

// handshake runs an in-memory SSH handshake with the static authenticator's callbacks wired
// the way the proxy wires them and returns the server side's permissions or error.
func handshake(st *login.Static, user string, methods ...ssh.AuthMethod) (*login.Grant, error) {
	hostKey := newSigner()
	l := &login.Login{Static: st}
	grant := func(g *login.Grant, err error) (*ssh.Permissions, error) {
		if err != nil {
			return nil, err
		}
		return g.Permissions(), nil
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			return nil, l.OfferKey(c.User(), k)
		},
		VerifiedPublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			return grant(l.PublicKey(context.Background(), c.User(), k))
		},
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			return grant(l.Password(context.Background(), c.User(), pw))
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	b, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	Expect(err).NotTo(HaveOccurred())
	a, err := ln.Accept()
	Expect(err).NotTo(HaveOccurred())
	deadline := time.Now().Add(10 * time.Second)
	Expect(a.SetDeadline(deadline)).To(Succeed())
	Expect(b.SetDeadline(deadline)).To(Succeed())
	clientDone := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(clientDone)
		c, chans, reqs, err := ssh.NewClientConn(b, "pipe", &ssh.ClientConfig{
			User: user, Auth: methods, HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
		})
		if err == nil {
			go ssh.DiscardRequests(reqs)
			go func() {
				for nc := range chans {
					_ = nc.Reject(ssh.Prohibited, "no")
				}
			}()
			c.Close()
		}
		b.Close()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(a, cfg)
	var perms *ssh.Permissions
	if err == nil {
		perms = sc.Permissions
		go ssh.DiscardRequests(reqs)
		go func() {
			for nc := range chans {
				_ = nc.Reject(ssh.Prohibited, "no")
			}
		}()
		sc.Close()
	}
	a.Close()
	Eventually(clientDone, 10*time.Second).Should(BeClosed())
	return login.GrantOf(perms), err
}

func reasonOf(err error) *login.Reason {
	GinkgoHelper()
	var r *login.Refusal
	Expect(errors.As(err, &r)).To(BeTrue(), "%v", err)
	return r.Reason
}

// static is a target whose instances do not listen (a grant then carries a refusal).
func static(name string, instances int, keys ...ssh.PublicKey) login.StaticTarget {
	addrs := make([]string, instances)
	for i := range addrs {
		addrs[i] = "127.0.0.1:1"
	}
	return login.StaticTarget{Name: name, Addresses: addrs, HostKey: fingerprint.Compute(fingerprint.SHA256, newSigner().PublicKey()), Signer: newSigner(),
		AuthorizedKeys: keys}
}

var _ = Describe("static target authentication", func() {
	var (
		alice, bob ssh.Signer
		st         *login.Static
	)

	BeforeEach(func() {
		alice, bob = newSigner(), newSigner()
		var err error
		st, err = login.NewStatic([]login.StaticTarget{
			static("web", 2, alice.PublicKey()), static("db.1", 1, bob.PublicKey()),
		}, []byte("s3cret"))
		Expect(err).NotTo(HaveOccurred())
	})

	Describe("ParseStaticUsername", func() {
		It("accepts <target>/<index>", func() {
			name, idx, err := login.ParseStaticUsername("db.1/12")
			Expect(err).NotTo(HaveOccurred())
			Expect(name).To(Equal("db.1"))
			Expect(idx).To(Equal(12))
		})
		DescribeTable("refuses", func(user string) {
			_, _, err := login.ParseStaticUsername(user)
			Expect(err).To(MatchError(login.ErrStaticUsernameFormat))
		},
			Entry("no index", "web"),
			Entry("empty name", "/0"),
			Entry("empty index", "web/"),
			Entry("leading zero", "web/01"),
			Entry("sign", "web/+1"),
			Entry("too large", "web/2147483648"),
			Entry("second slash", "web/0/1"),
			Entry("scheme", "cf:web/0"),
			Entry("leading dash", "-web/0"),
			Entry("too long", "a234567890123456789012345678901234567890123456789012345678901234/0"),
		)
		It("tells static user names from cf: and diego: ones", func() {
			Expect(login.IsStaticUsername("web/0")).To(BeTrue())
			Expect(login.IsStaticUsername("cf:abc/0")).To(BeFalse())
			Expect(login.IsStaticUsername("diego:abc/0")).To(BeFalse())
			Expect(login.IsStaticUsername("web/0:x")).To(BeTrue())
		})
	})

	It("refuses duplicate names and targets without instances", func() {
		_, err := login.NewStatic([]login.StaticTarget{static("a", 1), static("a", 1)}, nil)
		Expect(err).To(MatchError(ContainSubstring("defined twice")))
		_, err = login.NewStatic([]login.StaticTarget{static("a", 0)}, nil)
		Expect(err).To(MatchError(ContainSubstring("no instances")))
		noPin := static("a", 1)
		noPin.HostKey = fingerprint.Fingerprint{}
		_, err = login.NewStatic([]login.StaticTarget{noPin}, nil)
		Expect(err).To(MatchError(ContainSubstring("pins no host key")))
	})

	It("grants a session for an authorized key the client signed with", func() {
		g, err := handshake(st, "web/1", ssh.PublicKeys(alice))
		Expect(err).NotTo(HaveOccurred())
		Expect(g.Scheme).To(Equal(login.SchemeStatic))
		Expect(g.ProcessGUID).To(Equal("web"))
		Expect(g.Index).To(Equal(1))
		Expect(g.InstanceGUID).To(Equal("static:web/1"))
		Expect(g.User).To(HavePrefix("key SHA256:"))
		// The instance does not listen: the grant carries the refusal for channel opens.
		Expect(g.Backend).To(BeNil())
		Expect(g.Refusal.Reason).To(BeIdenticalTo(login.ReasonBackendDown))
	})

	It("refuses a key authorized for another target", func() {
		_, err := handshake(st, "web/0", ssh.PublicKeys(bob))
		Expect(err).To(HaveOccurred())
	})

	It("refuses a client that offers an authorized key but cannot sign with it", func() {
		liar := lyingSigner{claimed: alice.PublicKey(), real: bob}
		_, err := handshake(st, "web/0", ssh.PublicKeys(liar))
		Expect(err).To(HaveOccurred())
	})

	It("decides nothing on a merely offered key", func() {
		l := &login.Login{Static: st}
		Expect(l.OfferKey("web/0", alice.PublicKey())).To(Succeed())
		Expect(reasonOf(l.OfferKey("web/0", bob.PublicKey()))).To(BeIdenticalTo(login.ReasonKeyNotAuthorized))
	})

	It("refuses an index beyond the target's instances and unknown targets", func() {
		l := &login.Login{Static: st}
		_, err := l.PublicKey(context.Background(), "web/2", alice.PublicKey())
		Expect(reasonOf(err)).To(BeIdenticalTo(login.ReasonUnknownTarget))
		_, err = l.PublicKey(context.Background(), "nope/0", alice.PublicKey())
		Expect(reasonOf(err)).To(BeIdenticalTo(login.ReasonUnknownTarget))
		_, err = handshake(st, "web/2", ssh.PublicKeys(alice))
		Expect(err).To(HaveOccurred())
	})

	It("accepts the diego credentials as password and refuses others", func() {
		g, err := handshake(st, "db.1/0", ssh.Password("s3cret"))
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{g.Scheme, g.ProcessGUID, g.Index, g.User}).To(Equal([]any{login.SchemeStatic, "db.1", 0, "diego"}))

		_, err = (&login.Login{Static: st}).Password(context.Background(), "db.1/0", []byte("wrong"))
		Expect(reasonOf(err)).To(BeIdenticalTo(login.ReasonInvalidCredential))
		_, err = handshake(st, "db.1/0", ssh.Password("wrong"))
		Expect(err).To(HaveOccurred())
	})

	It("refuses passwords when no credentials are configured", func() {
		keyOnly, err := login.NewStatic([]login.StaticTarget{static("web", 1)}, nil)
		Expect(err).NotTo(HaveOccurred())
		_, err = (&login.Login{Static: keyOnly}).Password(context.Background(), "web/0", []byte(""))
		Expect(reasonOf(err)).To(BeIdenticalTo(login.ReasonSchemeDisabled))
	})
})
