// Package rawssh writes SSH protocol messages by hand, for tests that must send what no client
// library will (x/crypto/ssh drops algorithm names it does not implement).
package rawssh

import (
	"encoding/binary"
	"io"
	"strings"
)

// KexInitWithHugeList writes a client identification line and a cleartext SSH_MSG_KEXINIT
// whose key-exchange list is n bytes of names no server implements: a server that logs the
// peer's offer verbatim writes n bytes into its log.
func KexInitWithHugeList(w io.Writer, n int) error {
	if _, err := io.WriteString(w, "SSH-2.0-rawssh\r\n"); err != nil {
		return err
	}
	names := strings.Repeat("x", 63)
	var list strings.Builder
	for list.Len() < n {
		if list.Len() > 0 {
			list.WriteByte(',')
		}
		list.WriteString(names)
	}
	payload := []byte{20}                          // SSH_MSG_KEXINIT
	payload = append(payload, make([]byte, 16)...) // cookie
	lists := []string{list.String(), "ssh-ed25519", "aes128-ctr", "aes128-ctr", "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""}
	for _, l := range lists {
		payload = binary.BigEndian.AppendUint32(payload, uint32(len(l)))
		payload = append(payload, l...)
	}
	payload = append(payload, 0)                        // first_kex_packet_follows
	payload = binary.BigEndian.AppendUint32(payload, 0) // reserved
	// RFC 4253 6: padding of at least 4 bytes making the whole a multiple of 8.
	pad := 8 - (5+len(payload))%8
	if pad < 4 {
		pad += 8
	}
	pkt := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)+pad))
	pkt = append(pkt, byte(pad))
	pkt = append(pkt, payload...)
	pkt = append(pkt, make([]byte, pad)...)
	_, err := w.Write(pkt)
	return err
}
