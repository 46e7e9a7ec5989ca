// Package logbuf is a sink that tests read while the code under test is still writing to it
// from its own goroutines (loggers, stderr of a peer), and the parser of the lager lines
// tests read from it or from a process's output.
package logbuf

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// LagerLines parses text as lager's JSON lines (what both binaries write), each flattened into
// one map: the data keys beside message, source, timestamp and log_level. Lines that are not
// lager lines (blank ones aside) are returned in bad, for callers that insist on none.
func LagerLines(text string) (lines []map[string]any, bad []string) {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var line struct {
			Timestamp string         `json:"timestamp"`
			Source    string         `json:"source"`
			Message   string         `json:"message"`
			LogLevel  *int           `json:"log_level"`
			Data      map[string]any `json:"data"`
		}
		if json.Unmarshal([]byte(l), &line) != nil || line.Message == "" || line.LogLevel == nil {
			bad = append(bad, l)
			continue
		}
		m := make(map[string]any, len(line.Data)+4)
		for k, v := range line.Data {
			m[k] = v
		}
		m["message"], m["source"], m["timestamp"], m["log_level"] = line.Message, line.Source, line.Timestamp, *line.LogLevel
		lines = append(lines, m)
	}
	return lines, bad
}
