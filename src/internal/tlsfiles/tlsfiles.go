// Package tlsfiles builds TLS configurations from PEM files, the one place the proxy (UAA,
// Cloud Controller, BBS, app instances, Loggregator, the metrics endpoint) reads certificates
// and keys. Every error names the file at fault.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// CertPool reads the PEM certificates of every file into one pool. A file without any
// certificate is an error.
func CertPool(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err // *PathError: names the file
		}
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("%s: no PEM certificate in file", file)
		}
	}
	return pool, nil
}

// KeyPair loads a PEM certificate (chain) and its private key. A file that cannot be read is
// reported as its *fs.PathError (both, joined, when neither can be read).
func KeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	if err := errors.Join(cerr, kerr); err != nil {
		return tls.Certificate{}, err
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s does not pair with key %s: %w", certFile, keyFile, err)
	}
	return kp, nil
}

// Client is a TLS 1.2+ client configuration trusting pool (the system roots when nil) and
// presenting pair when it is not nil.
func Client(pool *x509.CertPool, pair *tls.Certificate) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if pair != nil {
		cfg.Certificates = []tls.Certificate{*pair}
	}
	return cfg
}

// Server is a TLS 1.2+ server configuration presenting certFile/keyFile.
func Server(certFile, keyFile string) (*tls.Config, error) {
	kp, err := KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}
