package rotation_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"

	"golang.org/x/crypto/ssh"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("host-key rotation through the real ssh-proxy (rendered with the real templates)", func() {
	DescribeTable("stages 0-3: verify-host-key and OpenSSH with UpdateHostKeys keep working",
		func(l layout) {
			r := newRig(l)

			By("stage 0: one key, presented and advertised")
			d := r.deploy(0)
			current := r.currentVariable()
			curKey := publicKeyOf(current)
			Expect(d.Advertised).To(Equal(current.PublicKeyFingerprint))
			Expect(d.Advertised).To(Equal(ssh.FingerprintLegacyMD5(curKey)), "the store's fingerprint is MD5 colon-hex")
			Expect(d.Link).To(Equal(current.PublicKeyFingerprint))
			expectPresents(r.ProxyAddr, curKey)
			code, out := verify(r.ProxyAddr, d.Advertised)
			Expect(code).To(Equal(0), out)
			r.client.knownAt(r.ProxyAddr, []ssh.PublicKey{curKey})
			r.client.login(r.ProxyAddr, "true")
			Expect(fps(r.client.known()...)).To(Equal(fps(curKey)), "no next key is announced before stage 1")

			By("stage 1: the next key is announced, not presented; OpenSSH learns it in one login")
			d = r.deploy(1)
			next := r.nextVariable()
			nextKey := publicKeyOf(next)
			Expect(fps(nextKey)).NotTo(Equal(fps(curKey)))
			Expect(r.currentVariable()).To(Equal(current), "stage 1 keeps the current key")
			Expect(d.Advertised).To(Equal(current.PublicKeyFingerprint))
			Expect(d.Link).To(Equal(current.PublicKeyFingerprint))
			expectPresents(r.ProxyAddr, curKey)
			expectNotPresented(r.ProxyAddr, nextKey)
			r.client.loginUntil(r.ProxyAddr, curKey, nextKey)

			By("stage 2: the next key is presented and advertised; strict OpenSSH logs in without a prompt")
			d = r.deploy(2)
			Expect(r.nextVariable()).To(Equal(next))
			Expect(d.Advertised).To(Equal(next.PublicKeyFingerprint))
			Expect(d.Link).To(Equal(next.PublicKeyFingerprint))
			expectPresents(r.ProxyAddr, nextKey)
			expectNotPresented(r.ProxyAddr, curKey)
			r.client.login(r.ProxyAddr, "true")
			Expect(fps(r.client.known()...)).To(ConsistOf(fps(curKey, nextKey)), "the old key is still announced")

			By("a client that never logged in during stage 1 is refused in stage 2 (why stage 1 must last)")
			late := newOpenSSH()
			late.user = staticTargetUser
			late.key = r.client.key
			late.identity = r.client.identity
			late.knownAt(r.ProxyAddr, []ssh.PublicKey{curKey})
			late.loginRefused(r.ProxyAddr)

			By("stage 3: the old key is dropped; OpenSSH forgets it after a login")
			d = r.deploy(3)
			Expect(d.Advertised).To(Equal(next.PublicKeyFingerprint))
			Expect(d.Props.Diego.SSHProxy.NextHostKeys).To(BeEmpty())
			expectPresents(r.ProxyAddr, nextKey)
			expectNotPresented(r.ProxyAddr, curKey)
			r.client.loginUntil(r.ProxyAddr, nextKey)
		},
		Entry("cf-deployment", cfDeploymentLayout),
		Entry("standalone manifest", standaloneLayout),
	)

	DescribeTable("the simple path: regenerate the single key and redeploy breaks pinned clients",
		func(l layout) {
			r := newRig(l)
			d := r.deploy(0)
			old := r.currentVariable()
			oldKey := publicKeyOf(old)
			Expect(d.Advertised).To(Equal(old.PublicKeyFingerprint))
			expectPresents(r.ProxyAddr, oldKey)
			r.client.knownAt(r.ProxyAddr, []ssh.PublicKey{oldKey})
			r.client.login(r.ProxyAddr, "true")

			By("regenerating the key in config-server (credhub regenerate) and redeploying")
			fresh := r.cs.regenerate(l.variable).Value
			freshKey := publicKeyOf(fresh)
			Expect(fps(freshKey)).NotTo(Equal(fps(oldKey)))
			Expect(r.currentVariable()).To(Equal(fresh))
			d = r.deploy(0)
			Expect(d.Advertised).To(Equal(fresh.PublicKeyFingerprint))
			Expect(d.Link).To(Equal(fresh.PublicKeyFingerprint))
			expectPresents(r.ProxyAddr, freshKey)
			expectNotPresented(r.ProxyAddr, oldKey)

			By("OpenSSH with the old known_hosts and StrictHostKeyChecking=yes is refused")
			out := r.client.loginRefused(r.ProxyAddr)
			Expect(out).To(ContainSubstring("IDENTIFICATION HAS CHANGED"))
			Expect(fps(r.client.known()...)).To(Equal(fps(oldKey)), "a refused client learns nothing")
		},
		Entry("cf-deployment", cfDeploymentLayout),
		Entry("standalone manifest", standaloneLayout),
	)

	// Each verify-host-key run is several ssh-keyscan connections that never attempt to log in.
	// Monitoring runs it in a loop from one address: the per-source penalties must never refuse
	// it, even where they are live on that address.
	It("never refuses repeated checks from one address, even with per-source penalties live on it", func() {
		r := newRig(cfDeploymentLayout)
		r.penaltiesOnLoopback = true
		d := r.deploy(0)
		for i := range 20 {
			code, out := verify(r.ProxyAddr, d.Advertised)
			Expect(code).To(Equal(0), "check %d from one address: %s", i, out)
		}
		Expect(r.proxy.output()).NotTo(ContainSubstring(`"reason":"penalty"`))
	})

	Describe("several host keys: additional_host_keys presented side by side, next_host_keys announced", func() {
		It("serves the RSA host_key and an ed25519 additional key; ssh-keyscan -t picks each", func() {
			r := newRig(cfDeploymentLayout)
			_, edPriv, err := ed25519.GenerateKey(rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			edSigner, err := ssh.NewSignerFromKey(edPriv)
			Expect(err).NotTo(HaveOccurred())
			r.additionalHostKeys(pemOf(edPriv))
			d := r.deploy(0)
			rsaKey := publicKeyOf(r.currentVariable())
			Expect(rsaKey.Type()).To(Equal(ssh.KeyAlgoRSA), "config-server generates RSA keys for type: ssh")
			Expect(d.Advertised).To(Equal(ssh.FingerprintLegacyMD5(rsaKey)))

			Expect(fps(keyscan(r.ProxyAddr, "rsa")...)).To(Equal(fps(rsaKey)))
			Expect(fps(keyscan(r.ProxyAddr, "ed25519")...)).To(Equal(fps(edSigner.PublicKey())))
			expectPresents(r.ProxyAddr, rsaKey)
			expectPresents(r.ProxyAddr, edSigner.PublicKey())

			By("OpenSSH that knows only the RSA key logs in and learns the ed25519 key")
			r.client.knownAt(r.ProxyAddr, []ssh.PublicKey{rsaKey})
			r.client.loginUntil(r.ProxyAddr, rsaKey, edSigner.PublicKey())
		})

		// next_host_keys is rendered into one file too.
		It("announces every key of a two-entry next_host_keys list; OpenSSH learns both", func() {
			r := newRig(cfDeploymentLayout)
			d := r.deploy(0)
			curKey := publicKeyOf(r.currentVariable())
			Expect(d.Advertised).To(Equal(ssh.FingerprintLegacyMD5(curKey)))
			_, edPriv, err := ed25519.GenerateKey(rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			edSigner, err := ssh.NewSignerFromKey(edPriv)
			Expect(err).NotTo(HaveOccurred())
			r.appendNextHostKeys(pemOf(edPriv))
			d = r.deploy(1)
			Expect(d.Props.Diego.SSHProxy.NextHostKeys).To(HaveLen(2))
			nextKey := publicKeyOf(r.nextVariable())
			expectPresents(r.ProxyAddr, curKey)
			expectNotPresented(r.ProxyAddr, edSigner.PublicKey())
			r.client.knownAt(r.ProxyAddr, []ssh.PublicKey{curKey})
			r.client.loginUntil(r.ProxyAddr, curKey, nextKey, edSigner.PublicKey())
		})

		// The template joins the list into one file; the proxy has to read every PEM key in it.
		It("serves every key of a two-entry additional_host_keys list (one file, two PEM keys)", func() {
			r := newRig(cfDeploymentLayout)
			_, edPriv, err := ed25519.GenerateKey(rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			Expect(err).NotTo(HaveOccurred())
			edSigner, err := ssh.NewSignerFromKey(edPriv)
			Expect(err).NotTo(HaveOccurred())
			ecSigner, err := ssh.NewSignerFromKey(ecPriv)
			Expect(err).NotTo(HaveOccurred())
			r.additionalHostKeys(pemOf(edPriv), pemOf(ecPriv))
			r.deploy(0)
			Expect(fps(keyscan(r.ProxyAddr, "rsa")...)).To(Equal(fps(publicKeyOf(r.currentVariable()))))
			Expect(fps(keyscan(r.ProxyAddr, "ed25519")...)).To(Equal(fps(edSigner.PublicKey())))
			Expect(fps(keyscan(r.ProxyAddr, "ecdsa")...)).To(Equal(fps(ecSigner.PublicKey())),
				"the second PEM key in config/keys/additional_host_keys is not presented")
		})
	})
})
