package recording

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config is the `recording:` block of the ssh-proxy config (docs/policy.md).
type Config struct {
	// Enabled records interactive pty sessions.
	Enabled bool `yaml:"enabled"`
	// Directory holds the casts (created 0700; on a BOSH VM under /var/vcap/store).
	Directory string `yaml:"directory"`
	// MaxFileBytes caps one cast file; MaxTotalBytes caps the directory (oldest deleted first).
	MaxFileBytes  int64 `yaml:"max_file_bytes"`
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// RecordInput adds the client's keystrokes ("i" events): off by default, they include
	// passwords typed at prompts.
	RecordInput bool `yaml:"record_input"`
}

// Defaults.
const (
	DefaultDirectory     = "/var/vcap/store/ssh_proxy/recordings"
	DefaultMaxFileBytes  = 64 << 20
	DefaultMaxTotalBytes = 10 << 30
)

// DefaultConfig is recording off, with the limits it would use.
func DefaultConfig() Config {
	return Config{Directory: DefaultDirectory, MaxFileBytes: DefaultMaxFileBytes, MaxTotalBytes: DefaultMaxTotalBytes}
}

// Validate returns one line per problem, naming the key under `recording.`.
func (c Config) Validate() []error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	if c.Directory == "" || !filepath.IsAbs(c.Directory) {
		errs = append(errs, fmt.Errorf("recording.directory: must be an absolute path when recording.enabled is true"))
	}
	if c.MaxFileBytes < 4096 {
		errs = append(errs, fmt.Errorf("recording.max_file_bytes: must be at least 4096"))
	}
	if c.MaxTotalBytes < c.MaxFileBytes {
		errs = append(errs, fmt.Errorf("recording.max_total_bytes: must be at least recording.max_file_bytes (%d)", c.MaxFileBytes))
	}
	return errs
}

// Manager creates cast files in one directory and keeps the directory under its cap.
type Manager struct {
	cfg Config

	mu     sync.Mutex
	active map[string]int64 // files being written → bytes reserved
}

// NewManager creates (or tightens to 0700) the directory. Call with a validated, enabled Config.
func NewManager(cfg Config) (*Manager, error) {
	if err := os.MkdirAll(cfg.Directory, 0o700); err != nil {
		return nil, fmt.Errorf("recording.directory: %w", err)
	}
	if err := os.Chmod(cfg.Directory, 0o700); err != nil {
		return nil, fmt.Errorf("recording.directory: %w", err)
	}
	return &Manager{cfg: cfg, active: map[string]int64{}}, nil
}

var sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// FileName is the cast's name: UTC start time, the connection's session ID (the audit log's
// session_id) and the channel's number on that connection. No user-controlled string is in it.
func FileName(start time.Time, sessionID string, channel int) string {
	return start.UTC().Format("20060102T150405.000Z") + "-" + sessionID + "-" + strconv.Itoa(channel) + ".cast"
}

var castName = regexp.MustCompile(`^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{1,64}-\d+\.cast$`)

// Start makes room under the directory cap (deleting the oldest finished casts) and opens a
// new cast for the session. sessionID must be lower-case hex (the proxy's session IDs are).
func (m *Manager) Start(h Header, sessionID string, channel int) (*Recorder, error) {
	if !sessionIDPattern.MatchString(sessionID) || channel < 0 {
		return nil, errors.New("recording: session ID must be lower-case hex and channel not negative")
	}
	if h.Start.IsZero() {
		h.Start = time.Now()
	}
	name := FileName(h.Start, sessionID, channel)
	m.mu.Lock()
	err := m.makeRoom(m.cfg.MaxFileBytes)
	if err == nil {
		m.active[name] = m.cfg.MaxFileBytes
	}
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	release := func() {
		m.mu.Lock()
		delete(m.active, name)
		m.mu.Unlock()
	}
	f, err := os.OpenFile(filepath.Join(m.cfg.Directory, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		release()
		return nil, fmt.Errorf("recording: %w", err)
	}
	r := &Recorder{mgr: m, name: name, f: f, start: h.Start, max: m.cfg.MaxFileBytes, input: m.cfg.RecordInput,
		release: release, w: bufio.NewWriterSize(f, 32<<10)}
	r.write(headerLine(h))
	if r.err != nil {
		res := r.Close()
		return nil, fmt.Errorf("recording: %w", res.Err)
	}
	return r, nil
}

func headerLine(h Header) []byte {
	b := []byte(`{"version": 2, "width": `)
	b = strconv.AppendInt(b, int64(max(h.Width, 1)), 10)
	b = append(b, `, "height": `...)
	b = strconv.AppendInt(b, int64(max(h.Height, 1)), 10)
	b = append(b, `, "timestamp": `...)
	b = strconv.AppendInt(b, h.Start.Unix(), 10)
	b = append(b, `, "env": {"TERM": `...)
	b = appendJSONString(b, []byte(h.Term))
	if h.Shell != "" {
		b = append(b, `, "SHELL": `...)
		b = appendJSONString(b, []byte(h.Shell))
	}
	return append(b, "}}\n"...)
}

// makeRoom deletes the oldest finished casts until the directory plus what recordings in
// progress may still write plus need fits under MaxTotalBytes. The caller holds mu.
func (m *Manager) makeRoom(need int64) error {
	entries, err := os.ReadDir(m.cfg.Directory)
	if err != nil {
		return fmt.Errorf("recording: %w", err)
	}
	type file struct {
		name string
		size int64
	}
	var finished []file
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !castName.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // shipped away meanwhile
			}
			return fmt.Errorf("recording: %w", err)
		}
		if reserved, ok := m.active[e.Name()]; ok {
			total += max(reserved, info.Size())
			continue
		}
		total += info.Size()
		finished = append(finished, file{e.Name(), info.Size()})
	}
	// Names start with the UTC start time: name order is age order.
	slices.SortFunc(finished, func(a, b file) int { return strings.Compare(a.name, b.name) })
	for len(finished) > 0 && total+need > m.cfg.MaxTotalBytes {
		f := finished[0]
		finished = finished[1:]
		if err := os.Remove(filepath.Join(m.cfg.Directory, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("recording: %w", err)
		}
		total -= f.size
	}
	if total+need > m.cfg.MaxTotalBytes {
		return ErrNoRoom
	}
	return nil
}

// syncDir makes the directory entries of created and deleted files durable (best effort).
func (m *Manager) syncDir() {
	if d, err := os.Open(m.cfg.Directory); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
