package logging

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxAttrLen is how many bytes of an attacker-controlled string (a user name, a client
// version, a command line, a subsystem or variable name, a forward's host) go into a log line.
const MaxAttrLen = 256

// MaxErrorLen is how many bytes of an error message go into a log line when the message may
// carry what a peer sent (x/crypto/ssh's "no common algorithm" quotes the client's whole offer).
const MaxErrorLen = 1024

// CapError is err's message capped at MaxErrorLen, as Cap does.
func CapError(err error) string {
	return CapAt(err.Error(), MaxErrorLen)
}

// Cap returns s as it may be logged: at most MaxAttrLen bytes of it, cut at a character
// boundary and followed by "…[truncated N bytes]" (N counts the bytes left out) when it was
// longer, with invalid UTF-8 replaced so the line stays valid JSON text.
func Cap(s string) string {
	return CapAt(s, MaxAttrLen)
}

// CapAt is Cap with the limit n (in bytes, before the marker).
func CapAt(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := max(n, 0)
	// Back up to the start of a character (at most utf8.UTFMax-1 bytes) so the kept part
	// does not end with half of one.
	for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "…[truncated " + strconv.Itoa(len(s)-cut) + " bytes]"
}
