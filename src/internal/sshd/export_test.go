package sshd

import (
	"time"

	"golang.org/x/crypto/ssh"
)

// HoldRepliesUntilFinished makes every session answer each request only once its program has
// finished, or after at most max: the reply of a quick command then loses the race against the
// command's exit (the widest form of what a busy machine does now and then). The returned
// function restores normal replies; call it only while no server runs.
func HoldRepliesUntilFinished(max time.Duration) (restore func()) {
	testHookBeforeReply = func(s *session, _ *ssh.Request) {
		t := time.NewTimer(max)
		defer t.Stop()
		select {
		case <-s.finished:
		case <-t.C:
		}
	}
	return func() { testHookBeforeReply = nil }
}
