package rotation_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/app-ssh/app-ssh/internal/testenv/certs"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
)

// configServer is a running config-server (in-memory store) and a client that talks to it the
// way the BOSH director does: bearer JWT with scope config_server.admin, JSON over TLS.
type configServer struct {
	URL    string
	token  string
	client *http.Client
	proc   *procs.Process
}

// mintJWT builds an RS256 JWT by hand: base64url(header).base64url(claims).base64url(sig).
func mintJWT(key *rsa.PrivateKey, claims map[string]any) string {
	enc := func(v any) string {
		b, err := json.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signingInput := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	Expect(err).NotTo(HaveOccurred())
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func startConfigServer() *configServer {
	dir := GinkgoT().TempDir()
	ca, err := certs.NewCA("config-server test CA")
	Expect(err).NotTo(HaveOccurred())
	leaf, err := ca.Issue("127.0.0.1", "127.0.0.1", "localhost")
	Expect(err).NotTo(HaveOccurred())
	certFile, keyFile, err := leaf.WriteFiles(dir, "server")
	Expect(err).NotTo(HaveOccurred())

	jwtKey, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	pubDER, err := x509.MarshalPKIXPublicKey(&jwtKey.PublicKey)
	Expect(err).NotTo(HaveOccurred())
	jwtPub := filepath.Join(dir, "jwt.pub")
	Expect(os.WriteFile(jwtPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)).To(Succeed())

	port := procs.FreePort()
	cfg := map[string]any{
		"port":                      port,
		"certificate_file_path":     certFile,
		"private_key_file_path":     keyFile,
		"jwt_verification_key_path": jwtPub,
		"store":                     "memory",
	}
	cfgJSON, err := json.Marshal(cfg)
	Expect(err).NotTo(HaveOccurred())
	cfgFile := filepath.Join(dir, "config.json")
	Expect(os.WriteFile(cfgFile, cfgJSON, 0o600)).To(Succeed())

	cs := &configServer{
		URL: "https://127.0.0.1:" + strconv.Itoa(port),
		token: mintJWT(jwtKey, map[string]any{
			"scope": []string{"config_server.admin"},
			"iat":   time.Now().Unix(),
			"exp":   time.Now().Add(time.Hour).Unix(),
		}),
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(ca.Pool(), nil)},
		},
	}
	DeferCleanup(cs.client.CloseIdleConnections) // after the process stops (last in, first out)
	cs.proc = procs.Start("config-server", exec.Command(configServerPath, cfgFile))

	By("waiting for config-server to answer over TLS")
	Eventually(func() error {
		select {
		case <-cs.proc.Session.Exited:
			return StopTrying("config-server exited: " + cs.proc.Output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := (&tls.Dialer{Config: certs.ClientTLS(ca.Pool(), nil)}).DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return err
		}
		return conn.Close()
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return cs
}

// do sends one request with a deadline; token "" sends no Authorization header.
func (cs *configServer) do(method, path, token string, body any) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cs.URL+path, rd)
	Expect(err).NotTo(HaveOccurred())
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cs.client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, data
}

// sshValue is the value of a `type: ssh` variable.
type sshValue struct {
	PrivateKey           string `json:"private_key"`
	PublicKey            string `json:"public_key"`
	PublicKeyFingerprint string `json:"public_key_fingerprint"`
}

type variable struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Value sshValue `json:"value"`
}

// generate asks for a `type: ssh` variable the way the director does for a manifest variable
// (POST, mode no-overwrite: an existing value is returned unchanged).
func (cs *configServer) generate(name string) (int, variable) {
	status, body := cs.do(http.MethodPost, "/v1/data", cs.token, map[string]any{
		"name": name, "type": "ssh", "parameters": map[string]any{}, "mode": "no-overwrite",
	})
	var v variable
	if status == http.StatusOK || status == http.StatusCreated {
		Expect(json.Unmarshal(body, &v)).To(Succeed(), string(body))
	}
	return status, v
}

// get returns the newest value of name (GET /v1/data?name=, newest first).
func (cs *configServer) get(name string) variable {
	status, body := cs.do(http.MethodGet, "/v1/data?name="+url.QueryEscape(name), cs.token, nil)
	Expect(status).To(Equal(http.StatusOK), string(body))
	var resp struct {
		Data []variable `json:"data"`
	}
	Expect(json.Unmarshal(body, &resp)).To(Succeed(), string(body))
	Expect(resp.Data).NotTo(BeEmpty())
	return resp.Data[0]
}

// regenerate replaces name with a fresh value: config-server keeps an existing value on POST, so
// the old one is deleted first (what `bosh delete-variable` / a forced regeneration does).
func (cs *configServer) regenerate(name string) variable {
	status, body := cs.do(http.MethodDelete, "/v1/data?name="+url.QueryEscape(name), cs.token, nil)
	Expect(status).To(Equal(http.StatusNoContent), string(body))
	status, v := cs.generate(name)
	Expect(status).To(Equal(http.StatusCreated), fmt.Sprint(v))
	return v
}
