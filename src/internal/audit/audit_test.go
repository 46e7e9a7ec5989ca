package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func lines(path string) []map[string]any {
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		Expect(json.Unmarshal(sc.Bytes(), &m)).To(Succeed(), sc.Text())
		out = append(out, m)
	}
	return out
}

var _ = Describe("audit log", func() {
	It("writes one start and one end line per session, with bounded command lists", func() {
		path := filepath.Join(GinkgoT().TempDir(), "log", "ssh_proxy", "audit.log")
		l, err := Open(path)
		Expect(err).NotTo(HaveOccurred())
		id := Identity{User: "alice", SSHUser: "cf:app/1", Scheme: "cf", AppGUID: "app", Index: 1,
			ProcessGUID: "app-v1", ClientAddr: "192.0.2.1:5555"}
		s := l.Start(id, "s1")
		s.Channel("session")
		s.Channel("session")
		s.Channel("direct-tcpip")
		s.Command("echo hi")
		s.Command(strings.Repeat("x", MaxCommandBytes+10))
		for range MaxCommands {
			s.Command("ls")
		}
		s.Bytes(10, 20)
		s.Bytes(1, 2)
		s.End("s1", "client closed")
		s.End("s1", "again")
		Expect(l.Close()).To(Succeed())

		st, err := os.Stat(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		ls := lines(path)
		Expect(ls).To(HaveLen(2))
		Expect(ls[0]).To(HaveKeyWithValue("event", "session-start"))
		Expect(ls[0]).To(HaveKeyWithValue("user", "alice"))
		Expect(ls[0]).To(HaveKeyWithValue("client_addr", "192.0.2.1:5555"))
		Expect(ls[0]).NotTo(HaveKey("bytes_to_client"))
		end := ls[1]
		Expect(end).To(HaveKeyWithValue("event", "session-end"))
		Expect(end).To(HaveKeyWithValue("session_id", "s1"))
		Expect(end).To(HaveKeyWithValue("bytes_to_backend", 11.0))
		Expect(end).To(HaveKeyWithValue("bytes_to_client", 22.0))
		Expect(end).To(HaveKeyWithValue("channel_types", map[string]any{"session": 2.0, "direct-tcpip": 1.0}))
		cmds := end["exec_commands"].([]any)
		Expect(cmds).To(HaveLen(MaxCommands))
		Expect(cmds[0]).To(Equal("echo hi"))
		Expect(len(cmds[1].(string))).To(BeNumerically("<", MaxCommandBytes+32))
		Expect(cmds[1]).To(HaveSuffix(" bytes]"), "capped with logging.Cap's marker")
		Expect(end).To(HaveKeyWithValue("exec_commands_not_recorded", 2.0))
		Expect(end).To(HaveKey("duration_seconds"))

		// Appends, never truncates.
		l, err = Open(path)
		Expect(err).NotTo(HaveOccurred())
		l.Start(id, "s2")
		Expect(l.Close()).To(Succeed())
		Expect(lines(path)).To(HaveLen(3))
	})

	It("is a no-op when nil", func() {
		var l *Log
		s := l.Start(Identity{}, "x")
		s.Channel("session")
		s.End("x", "")
		Expect(l.Close()).To(Succeed())
	})
})
