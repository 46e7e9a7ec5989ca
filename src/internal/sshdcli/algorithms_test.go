package sshdcli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("sshd -check-config and algorithm names", func() {
	check := func(content string) (int, string, string) {
		path := filepath.Join(GinkgoT().TempDir(), "sshd.yml")
		Expect(os.WriteFile(path, []byte(content), 0o644)).To(Succeed())
		var out, errOut bytes.Buffer
		code := Main([]string{"sshd", "-check-config", path}, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	It("lists the names it ignores as warnings and still succeeds", func() {
		code, out, errOut := check("allow_unauthenticated_clients: true\n" +
			"allowed_ciphers: [rot13, aes256-ctr]\nallowed_key_exchanges: [curve25519-sha256@libssh.org, sntrup761x25519-sha512@openssh.com]\n")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("config OK\n"))
		Expect(strings.Split(strings.TrimSpace(errOut), "\n")).To(HaveExactElements(
			`warning: allowed_ciphers: ignoring cipher not implemented by golang.org/x/crypto/ssh: "rot13"`,
			`warning: allowed_key_exchanges: ignoring key exchange not implemented by golang.org/x/crypto/ssh: "sntrup761x25519-sha512@openssh.com"`,
		))
	})

	It("fails on a list with no usable name, naming the key", func() {
		code, _, errOut := check("allow_unauthenticated_clients: true\nallowed_macs: [umac-64@openssh.com]\n")
		Expect(code).To(Equal(2))
		Expect(errOut).To(HavePrefix(`allowed_macs: no listed MAC is implemented ("umac-64@openssh.com")`))
	})
})
