// Package hostkeys implements the server side of OpenSSH's host-key update protocol
// (hostkeys-00@openssh.com and hostkeys-prove-00@openssh.com), so that OpenSSH clients with
// UpdateHostKeys learn every key the server holds, including keys that will be presented only
// after a rotation, and forget keys the server no longer announces.
//
// After user authentication the server sends the global request hostkeys-00@openssh.com
// (want-reply false) whose payload is one SSH string per public key blob. A client that sees keys
// it does not know yet answers with the global request hostkeys-prove-00@openssh.com (want-reply
// true) listing those blobs; the server replies SSH_MSG_REQUEST_SUCCESS carrying one SSH string
// per requested key, in order, each an SSH signature by that key over
//
//	string "hostkeys-prove-00@openssh.com"
//	string session identifier
//	string public key blob
//
// RSA keys are signed with the signature algorithm negotiated for the host key during key
// exchange when that was an RSA one (the client verifies with exactly that algorithm), and with
// rsa-sha2-512 otherwise (the client then accepts only rsa-sha2-512 or rsa-sha2-256).
package hostkeys

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

const (
	// RequestAnnounce is the global request that lists the server's host keys.
	RequestAnnounce = "hostkeys-00@openssh.com"
	// RequestProve is the global request by which the client asks for proof of key ownership.
	RequestProve = "hostkeys-prove-00@openssh.com"

	// maxProveKeys bounds the work one prove request can cause; it is never less than the
	// number of announced keys.
	maxProveKeys = 64
)

// Announcer announces a fixed set of host keys and proves ownership of them. It is safe for
// concurrent use by many connections.
type Announcer struct {
	signers []ssh.Signer // current first, then next; one per distinct public key
	byBlob  map[string]ssh.Signer
	payload []byte // the hostkeys-00 payload, built once
}

// New returns an Announcer for the keys the server presents (current) and the keys it will
// present after the next rotation step (next). A key listed twice is announced once. Nil
// signers are ignored.
func New(current, next []ssh.Signer) *Announcer {
	a := &Announcer{byBlob: map[string]ssh.Signer{}}
	for _, list := range [][]ssh.Signer{current, next} {
		for _, s := range list {
			if s == nil {
				continue
			}
			blob := string(s.PublicKey().Marshal())
			if _, dup := a.byBlob[blob]; dup {
				continue
			}
			a.byBlob[blob] = s
			a.signers = append(a.signers, s)
			a.payload = appendString(a.payload, []byte(blob))
		}
	}
	return a
}

// Keys returns the announced public keys, current keys first.
func (a *Announcer) Keys() []ssh.PublicKey {
	keys := make([]ssh.PublicKey, 0, len(a.signers))
	for _, s := range a.signers {
		keys = append(keys, s.PublicKey())
	}
	return keys
}

// Payload returns the hostkeys-00@openssh.com request payload.
func (a *Announcer) Payload() []byte {
	return bytes.Clone(a.payload)
}

// Announce sends hostkeys-00@openssh.com on an authenticated server connection. It does not
// wait for anything: the request wants no reply. With no keys it sends nothing.
func (a *Announcer) Announce(conn ssh.Conn) error {
	if len(a.signers) == 0 {
		return nil
	}
	if _, _, err := conn.SendRequest(RequestAnnounce, false, a.payload); err != nil {
		return fmt.Errorf("sending %s: %w", RequestAnnounce, err)
	}
	return nil
}

// HandleRequest answers a global request from the client if it belongs to the host-key update
// protocol and reports whether it did; requests it does not handle are left untouched for the
// caller (to relay or refuse). conn must be the server connection the request arrived on: its
// session identifier and negotiated host-key algorithm go into the proof.
//
// A prove request naming a key that is not announced, or a malformed one, is refused as a whole
// (SSH_MSG_REQUEST_FAILURE), as OpenSSH's sshd does. A hostkeys-00 request from a client is
// not meaningful and is refused too.
func (a *Announcer) HandleRequest(conn ssh.Conn, req *ssh.Request) (handled bool) {
	switch req.Type {
	case RequestProve:
		reply, err := a.Prove(conn.SessionID(), NegotiatedHostKeyAlgorithm(conn), req.Payload)
		if req.WantReply {
			if err != nil {
				_ = req.Reply(false, nil)
			} else {
				_ = req.Reply(true, reply)
			}
		}
		return true
	case RequestAnnounce:
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
		return true
	}
	return false
}

// Prove builds the reply to a hostkeys-prove-00@openssh.com request: one signature per key
// blob in payload, in the same order. hostKeyAlgorithm is the host-key algorithm negotiated in
// key exchange ("" when unknown).
func (a *Announcer) Prove(sessionID []byte, hostKeyAlgorithm string, payload []byte) ([]byte, error) {
	limit := max(maxProveKeys, len(a.signers))
	blobs, err := parseStrings(payload, limit)
	if err != nil {
		return nil, fmt.Errorf("malformed %s payload: %w", RequestProve, err)
	}
	if len(blobs) == 0 {
		return nil, fmt.Errorf("%s names no key", RequestProve)
	}
	var reply []byte
	for i, blob := range blobs {
		signer, ok := a.byBlob[string(blob)]
		if !ok {
			return nil, fmt.Errorf("%s key %d is not one of the announced keys", RequestProve, i)
		}
		sig, err := sign(signer, hostKeyAlgorithm, signedData(sessionID, blob))
		if err != nil {
			return nil, fmt.Errorf("signing proof for %s key: %w", signer.PublicKey().Type(), err)
		}
		reply = appendString(reply, ssh.Marshal(sig))
	}
	return reply, nil
}

// NegotiatedHostKeyAlgorithm returns the host-key algorithm agreed in key exchange on conn, or
// "" when conn does not expose it. *ssh.ServerConn and *ssh.Client are unwrapped.
func NegotiatedHostKeyAlgorithm(conn ssh.Conn) string {
	switch c := conn.(type) {
	case ssh.AlgorithmsConnMetadata:
		return c.Algorithms().HostKey
	case *ssh.ServerConn:
		if c != nil && c.Conn != nil {
			return NegotiatedHostKeyAlgorithm(c.Conn)
		}
	case *ssh.Client:
		if c != nil && c.Conn != nil {
			return NegotiatedHostKeyAlgorithm(c.Conn)
		}
	}
	return ""
}

// rsaAlgorithms are the RSA signature algorithms, by the host-key algorithm that selects them
// (plain and certificate forms).
var rsaAlgorithms = map[string]string{
	ssh.KeyAlgoRSASHA512:     ssh.KeyAlgoRSASHA512,
	ssh.KeyAlgoRSASHA256:     ssh.KeyAlgoRSASHA256,
	ssh.KeyAlgoRSA:           ssh.KeyAlgoRSA,
	ssh.CertAlgoRSASHA512v01: ssh.KeyAlgoRSASHA512,
	ssh.CertAlgoRSASHA256v01: ssh.KeyAlgoRSASHA256,
	ssh.CertAlgoRSAv01:       ssh.KeyAlgoRSA,
}

// SignatureAlgorithm returns the signature algorithm used to prove a key of type keyType when
// hostKeyAlgorithm was negotiated. "" means the key type's only algorithm.
func SignatureAlgorithm(keyType, hostKeyAlgorithm string) string {
	if keyType != ssh.KeyAlgoRSA {
		return ""
	}
	if alg, ok := rsaAlgorithms[hostKeyAlgorithm]; ok {
		return alg
	}
	return ssh.KeyAlgoRSASHA512
}

func sign(signer ssh.Signer, hostKeyAlgorithm string, data []byte) (*ssh.Signature, error) {
	alg := SignatureAlgorithm(signer.PublicKey().Type(), hostKeyAlgorithm)
	if alg == "" {
		return signer.Sign(rand.Reader, data)
	}
	as, ok := signer.(ssh.AlgorithmSigner)
	if !ok {
		return nil, fmt.Errorf("signer cannot sign with %s", alg)
	}
	// A signer restricted to some algorithms (allowed_host_key_algorithms) may lack
	// rsa-sha2-512; when the client accepts either SHA-2 algorithm, use the one it has.
	if ms, ok := signer.(ssh.MultiAlgorithmSigner); ok && !slices.Contains(ms.Algorithms(), alg) {
		if _, rsaKex := rsaAlgorithms[hostKeyAlgorithm]; !rsaKex && slices.Contains(ms.Algorithms(), ssh.KeyAlgoRSASHA256) {
			alg = ssh.KeyAlgoRSASHA256
		}
	}
	return as.SignWithAlgorithm(rand.Reader, data, alg)
}

// IsProtocolRequest reports whether a global request type belongs to the host-key update
// protocol. A proxy must not relay such requests from its backend to the client: the backend's
// keys are not the proxy's, and OpenSSH's client treats a second hostkeys-00 as fatal.
func IsProtocolRequest(requestType string) bool {
	return requestType == RequestAnnounce || requestType == RequestProve
}

// signedData is what a proof signature covers.
func signedData(sessionID, blob []byte) []byte {
	var b []byte
	b = appendString(b, []byte(RequestProve))
	b = appendString(b, sessionID)
	b = appendString(b, blob)
	return b
}

// VerifyProof checks one proof signature the way a client does: sig must be key's signature
// over the proof data for sessionID, made with the algorithm the client expects after
// negotiating hostKeyAlgorithm.
func VerifyProof(sessionID []byte, hostKeyAlgorithm string, key ssh.PublicKey, sig *ssh.Signature) error {
	if key.Type() == ssh.KeyAlgoRSA {
		if want, rsaKex := rsaAlgorithms[hostKeyAlgorithm]; rsaKex {
			if sig.Format != want {
				return fmt.Errorf("proof signed with %s, want %s", sig.Format, want)
			}
		} else if sig.Format != ssh.KeyAlgoRSASHA512 && sig.Format != ssh.KeyAlgoRSASHA256 {
			return fmt.Errorf("proof signed with %s, want an rsa-sha2 algorithm", sig.Format)
		}
	}
	return key.Verify(signedData(sessionID, key.Marshal()), sig)
}

// ParseKeys parses a hostkeys-00@openssh.com (or hostkeys-prove-00@openssh.com) payload.
func ParseKeys(payload []byte) ([]ssh.PublicKey, error) {
	blobs, err := parseStrings(payload, maxProveKeys)
	if err != nil {
		return nil, err
	}
	keys := make([]ssh.PublicKey, 0, len(blobs))
	for i, blob := range blobs {
		k, err := ssh.ParsePublicKey(blob)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// ParseSignatures parses the payload of a successful reply to hostkeys-prove-00@openssh.com.
func ParseSignatures(payload []byte) ([]*ssh.Signature, error) {
	blobs, err := parseStrings(payload, maxProveKeys)
	if err != nil {
		return nil, err
	}
	sigs := make([]*ssh.Signature, 0, len(blobs))
	for i, blob := range blobs {
		var sig ssh.Signature
		if err := ssh.Unmarshal(blob, &sig); err != nil {
			return nil, fmt.Errorf("signature %d: %w", i, err)
		}
		sigs = append(sigs, &sig)
	}
	return sigs, nil
}

// ProvePayload builds a hostkeys-prove-00@openssh.com request payload for keys.
func ProvePayload(keys []ssh.PublicKey) []byte {
	var b []byte
	for _, k := range keys {
		b = appendString(b, k.Marshal())
	}
	return b
}

// LoadFiles reads one PEM private key (any format ssh.ParsePrivateKey accepts) per path.
// Errors name the path, never the key material.
func LoadFiles(paths []string) ([]ssh.Signer, error) {
	signers := make([]ssh.Signer, 0, len(paths))
	var errs []error
	for _, p := range paths {
		pemBytes, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("host key %s: %w", p, err))
			continue
		}
		s, err := ParsePEM(pemBytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("host key %s: %w", p, err))
			continue
		}
		signers = append(signers, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return signers, nil
}

// ParsePEM parses one private host key. Surrounding blank space (as BOSH properties often carry)
// is tolerated.
func ParsePEM(pemBytes []byte) (ssh.Signer, error) {
	trimmed := strings.TrimSpace(string(pemBytes))
	if trimmed == "" {
		return nil, errors.New("empty private key")
	}
	s, err := ssh.ParsePrivateKey([]byte(trimmed + "\n"))
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errors.New("private key is passphrase-protected")
		}
		return nil, fmt.Errorf("not a usable private key: %w", err)
	}
	return s, nil
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// parseStrings splits a payload made only of SSH strings, allowing at most limit of them.
func parseStrings(payload []byte, limit int) ([][]byte, error) {
	var out [][]byte
	for len(payload) > 0 {
		if len(out) == limit {
			return nil, fmt.Errorf("more than %d entries", limit)
		}
		if len(payload) < 4 {
			return nil, errors.New("truncated length")
		}
		n := binary.BigEndian.Uint32(payload)
		payload = payload[4:]
		if uint64(n) > uint64(len(payload)) {
			return nil, errors.New("truncated entry")
		}
		out = append(out, payload[:n])
		payload = payload[n:]
	}
	return out, nil
}
