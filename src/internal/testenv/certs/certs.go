// Package certs makes throw-away certificate authorities and key pairs for tests and for
// local development runs. Nothing here is meant for production use.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// validity is how long every certificate made here stays valid.
const validity = 24 * time.Hour

// CA is a self-signed test certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// KeyPair is a leaf certificate and its private key, in PEM and as a tls.Certificate.
type KeyPair struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
	caPEM           []byte
}

func serial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	return rand.Int(rand.Reader, limit)
}

// NewCA creates a self-signed test CA (ECDSA P-256, valid 24h).
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"app-ssh tests"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return &CA{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte {
	return append([]byte(nil), ca.certPEM...)
}

// Pool returns a new certificate pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue creates a leaf signed by the CA, usable for server AND client auth, with DNS SANs and
// IP SANs (a SAN that parses as an IP address, such as "127.0.0.1", becomes an IP SAN).
func (ca *CA) Issue(commonName string, sans ...string) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating leaf key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"app-ssh tests"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if s != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing leaf certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding leaf key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading leaf key pair: %w", err)
	}
	return &KeyPair{CertPEM: certPEM, KeyPEM: keyPEM, TLS: pair, caPEM: ca.certPEM}, nil
}

// WriteFiles writes ca.crt, <name>.crt and <name>.key into dir (keys with mode 0600) and
// returns the paths of the certificate and key.
func (kp *KeyPair) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	if name == "" {
		return "", "", errors.New("certs: empty file name")
	}
	if len(kp.caPEM) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), kp.caPEM, 0o644); err != nil {
			return "", "", err
		}
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, kp.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, kp.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteFile writes the CA certificate to dir/<name>.crt and returns its path.
func (ca *CA) WriteFile(dir, name string) (string, error) {
	if name == "" {
		return "", errors.New("certs: empty file name")
	}
	p := filepath.Join(dir, name+".crt")
	if err := os.WriteFile(p, ca.certPEM, 0o644); err != nil {
		return "", err
	}
	return p, nil
}

// ServerTLS returns a TLS server configuration presenting kp. When clientCAs is not nil,
// clients must present a certificate signed by one of them.
func ServerTLS(kp *KeyPair, clientCAs *x509.CertPool) *tls.Config {
	cfg := &tls.Config{
		Certificates: []tls.Certificate{kp.TLS},
		MinVersion:   tls.VersionTLS12,
	}
	if clientCAs != nil {
		cfg.ClientCAs = clientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// ClientTLS returns a TLS client configuration trusting roots and, when kp is not nil,
// presenting kp as the client certificate.
func ClientTLS(roots *x509.CertPool, kp *KeyPair) *tls.Config {
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if kp != nil {
		cfg.Certificates = []tls.Certificate{kp.TLS}
	}
	return cfg
}
