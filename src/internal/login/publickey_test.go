package login_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	"github.com/app-ssh/app-ssh/internal/auth"
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
func handshake(st *auth.Static, user string, methods ...ssh.AuthMethod) (*ssh.Permissions, error) {
	hostKey := newSigner()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			return st.OfferedKey(c.User(), k)
		},
		VerifiedPublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			return st.VerifiedKey(c.User(), k)
		},
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			return st.Password(c.User(), pw)
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
	return perms, err
}

var _ = Describe("static target authentication", func() {
	var (
		alice, bob ssh.Signer
		st         *auth.Static
	)

	BeforeEach(func() {
		alice, bob = newSigner(), newSigner()
		var err error
		st, err = auth.NewStatic([]auth.StaticTarget{
			{Name: "web", Instances: 2, AuthorizedKeys: []ssh.PublicKey{alice.PublicKey()}},
			{Name: "db.1", Instances: 1, AuthorizedKeys: []ssh.PublicKey{bob.PublicKey()}},
		}, []byte("s3cret"))
		Expect(err).NotTo(HaveOccurred())
	})

	Describe("ParseStaticUsername", func() {
		It("accepts <target>/<index>", func() {
			name, idx, err := auth.ParseStaticUsername("db.1/12")
			Expect(err).NotTo(HaveOccurred())
			Expect(name).To(Equal("db.1"))
			Expect(idx).To(Equal(12))
		})
		DescribeTable("refuses", func(user string) {
			_, _, err := auth.ParseStaticUsername(user)
			Expect(err).To(MatchError(auth.ErrStaticUsernameFormat))
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
			Expect(auth.IsStaticUsername("web/0")).To(BeTrue())
			Expect(auth.IsStaticUsername("cf:abc/0")).To(BeFalse())
			Expect(auth.IsStaticUsername("diego:abc/0")).To(BeFalse())
			Expect(auth.IsStaticUsername("web/0:x")).To(BeTrue())
		})
	})

	It("refuses duplicate names and targets without instances", func() {
		_, err := auth.NewStatic([]auth.StaticTarget{{Name: "a", Instances: 1}, {Name: "a", Instances: 1}}, nil)
		Expect(err).To(MatchError(ContainSubstring("defined twice")))
		_, err = auth.NewStatic([]auth.StaticTarget{{Name: "a"}}, nil)
		Expect(err).To(MatchError(ContainSubstring("no instances")))
	})

	It("grants a session for an authorized key the client signed with", func() {
		perms, err := handshake(st, "web/1", ssh.PublicKeys(alice))
		Expect(err).NotTo(HaveOccurred())
		t, err := auth.TargetOf(perms)
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Scheme).To(Equal(auth.SchemeStatic))
		Expect(t.ProcessGUID).To(Equal("web"))
		Expect(t.Index).To(Equal(1))
		Expect(t.User).To(HavePrefix("key SHA256:"))
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
		perms, err := st.OfferedKey("web/0", alice.PublicKey())
		Expect(err).NotTo(HaveOccurred())
		_, err = auth.TargetOf(perms)
		Expect(err).To(HaveOccurred())

		_, err = st.OfferedKey("web/0", bob.PublicKey())
		Expect(auth.ReasonOf(err)).To(Equal(auth.ReasonKeyNotAuthorized))
	})

	It("refuses an index beyond the target's instances and unknown targets", func() {
		_, err := st.VerifiedKey("web/2", alice.PublicKey())
		Expect(auth.ReasonOf(err)).To(Equal(auth.ReasonUnknownTarget))
		_, err = st.VerifiedKey("nope/0", alice.PublicKey())
		Expect(auth.ReasonOf(err)).To(Equal(auth.ReasonUnknownTarget))
		_, err = handshake(st, "web/2", ssh.PublicKeys(alice))
		Expect(err).To(HaveOccurred())
	})

	It("accepts the diego credentials as password and refuses others", func() {
		perms, err := handshake(st, "db.1/0", ssh.Password("s3cret"))
		Expect(err).NotTo(HaveOccurred())
		t, err := auth.TargetOf(perms)
		Expect(err).NotTo(HaveOccurred())
		Expect(t).To(Equal(auth.Target{Scheme: auth.SchemeStatic, ProcessGUID: "db.1", Index: 0, User: "diego"}))

		_, err = st.Password("db.1/0", []byte("wrong"))
		Expect(auth.ReasonOf(err)).To(Equal(auth.ReasonInvalidCredential))
		_, err = handshake(st, "db.1/0", ssh.Password("wrong"))
		Expect(err).To(HaveOccurred())
	})

	It("refuses passwords when no credentials are configured", func() {
		keyOnly, err := auth.NewStatic([]auth.StaticTarget{{Name: "web", Instances: 1}}, nil)
		Expect(err).NotTo(HaveOccurred())
		_, err = keyOnly.Password("web/0", []byte(""))
		Expect(auth.ReasonOf(err)).To(Equal(auth.ReasonSchemeDisabled))
		var r *auth.Refusal
		Expect(errors.As(err, &r)).To(BeTrue())
	})
})
