package hardening_test

import (
	"net"

	"golang.org/x/crypto/ssh"
)

// sshClientWithRetries logs in over c offering up to n passwords from next.
func sshClientWithRetries(c net.Conn, user string, next func() string, n int) (*ssh.Client, error) {
	sc, chans, reqs, err := ssh.NewClientConn(c, "127.0.0.1", &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) { return next(), nil }), n)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}
