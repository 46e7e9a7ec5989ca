package tlsfiles_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"
	"github.com/app-ssh/app-ssh/internal/tlsfiles"
)

func TestClientAndServerFromFilesTalk(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := ca.WriteFile(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	srvKP, _ := ca.Issue("server", "127.0.0.1")
	cliKP, _ := ca.Issue("client")
	srvCert, srvKey, err := srvKP.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey, err := cliKP.WriteFiles(dir, "client")
	if err != nil {
		t.Fatal(err)
	}

	srvCfg, err := tlsfiles.Server(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	srvCfg.ClientCAs, err = tlsfiles.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			err = c.(*tls.Conn).Handshake()
			c.Close()
		}
		done <- err
	}()

	pool, err := tlsfiles.CertPool(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tlsfiles.KeyPair(cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	cliCfg := tlsfiles.Client(pool, &pair)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
}

func TestErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	ca, _ := certs.NewCA("ca")
	kp, _ := ca.Issue("x")
	cert, key, _ := kp.WriteFiles(dir, "x")
	other, _ := ca.Issue("y")
	_, otherKey, _ := other.WriteFiles(dir, "y")

	for name, f := range map[string]func() error{
		garbage: func() error { _, err := tlsfiles.CertPool(garbage); return err },
		missing: func() error { _, err := tlsfiles.CertPool(missing); return err },
		key:     func() error { _, err := tlsfiles.KeyPair(missing, key); return err },
		cert:    func() error { _, err := tlsfiles.Server(cert, otherKey); return err },
	} {
		err := f()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		want := filepath.Base(name)
		if name == key {
			want = "missing.pem"
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
