package policy_test

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/integration/internal/procs"
	"github.com/app-ssh/app-ssh/internal/testenv/uaastub"
)

// normalise drops what differs from run to run (times, durations, IDs, client ports) and
// reduces byte counts to whether there were any.
func normalise(ev map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range ev {
		switch k {
		case "time", "start_time", "duration_seconds", "session_id", "client_addr":
			continue
		case "bytes_to_backend", "bytes_to_client":
			if v.(float64) > 0 {
				v = "some"
			} else {
				v = "none"
			}
		case "recording_file":
			Expect(v).To(MatchRegexp(`^\d{8}T\d{6}\.\d{3}Z-` + ev["session_id"].(string) + `-` + fmt.Sprint(ev["channel"]) + `\.cast$`))
			v = "<cast>"
		}
		out[k] = v
	}
	return out
}

var _ = Describe("channel audit events", func() {
	It("writes one event per channel of a scripted mix, field by field, linked to its connection", func() {
		e := newEnv("policy:\n  remote_forwarding: false\nrecording:\n  enabled: true\n  directory: CASTDIR\n")
		echo := echoServer()

		// a shell with a terminal (recorded)
		r := e.ssh(strings.NewReader("echo shell-marker\nexit\n"), []string{"-tt"})
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(ContainSubstring("shell-marker"))
		// a command exiting 3, with an env value that must not be logged
		r = e.ssh(nil, []string{"-o", "SetEnv=LANG=" + envSecret}, "exit 3")
		Expect(r.Code).To(Equal(3), r.Stderr)
		// sftp
		r = e.sftp("ls /\n")
		Expect(r.Code).To(Equal(0), r.Stderr)
		// -L, used once
		lport := procs.FreePort()
		_, stop := e.sshStart([]string{"-N", "-o", "ExitOnForwardFailure=yes", "-L", strconv.Itoa(lport) + ":127.0.0.1:" + strconv.Itoa(echo)})
		Eventually(func() (string, error) { return readVia(lport) }, 30*time.Second, 100*time.Millisecond).
			Should(Equal("hello from " + strconv.Itoa(echo) + "\n"))
		stop()
		// a refused -R (the command still runs)
		r = e.ssh(nil, []string{"-R", "7000:127.0.0.1:" + strconv.Itoa(echo)}, "true")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Eventually(func() []map[string]any { return e.eventsOf("session-end") }, 10*time.Second, 50*time.Millisecond).Should(HaveLen(5))

		events := e.rig.AuditEvents()
		starts := map[string]bool{}
		var got []map[string]any
		for _, ev := range events {
			switch ev["event"] {
			case "session-start":
				starts[ev["session_id"].(string)] = true
			case "channel", "channel-refused", "request-refused", "remote-forward":
				Expect(starts).To(HaveKey(ev["session_id"]), "event %v is linked to its connection", ev)
				got = append(got, normalise(ev))
			}
		}
		id := func(m map[string]any) map[string]any {
			m["user"], m["user_id"], m["ssh_user"], m["scheme"] = uaastub.DefaultUserName, uaastub.DefaultUserID, e.user(), "cf"
			m["app_guid"], m["index"], m["process_guid"], m["instance_guid"] = appGUID, 0.0, processGUID, instanceGUID
			m["transport"] = "tcp" // the connection came through the SSH listener, not the WebSocket one
			return m
		}
		want := []map[string]any{
			id(map[string]any{"event": "channel", "channel": 1.0, "channel_type": "session", "direction": "client",
				"program": "shell", "pty": true, "exit_status": 0.0, "bytes_to_backend": "some", "bytes_to_client": "some",
				"recording_file": "<cast>", "end_reason": "closed"}),
			id(map[string]any{"event": "channel", "channel": 1.0, "channel_type": "session", "direction": "client",
				"program": "exec", "command": "exit 3", "pty": false, "env_names": []any{"LANG"}, "exit_status": 3.0,
				"bytes_to_backend": "none", "bytes_to_client": "none", "end_reason": "closed"}),
			id(map[string]any{"event": "channel", "channel": 1.0, "channel_type": "session", "direction": "client",
				"program": "sftp", "subsystem": "sftp", "pty": false, "exit_status": 0.0,
				"bytes_to_backend": "some", "bytes_to_client": "some", "end_reason": "closed"}),
			id(map[string]any{"event": "channel", "channel": 1.0, "channel_type": "direct-tcpip", "direction": "client",
				"forward_target": "127.0.0.1:" + strconv.Itoa(echo), "bytes_to_backend": "none", "bytes_to_client": "some",
				"end_reason": "closed"}),
			id(map[string]any{"event": "request-refused", "request_type": "tcpip-forward", "listen_address": "localhost:7000",
				"denied": map[string]any{"kind": "remote-forward", "reason": "remote port forwarding (-R) is disabled by the operator's policy"}}),
			id(map[string]any{"event": "channel", "channel": 1.0, "channel_type": "session", "direction": "client",
				"program": "exec", "command": "true", "pty": false, "exit_status": 0.0,
				"bytes_to_backend": "none", "bytes_to_client": "none", "end_reason": "closed"}),
		}
		for i := range min(len(got), len(want)) {
			Expect(got[i]).To(Equal(want[i]), "event %d", i)
		}
		Expect(got).To(HaveLen(len(want)))
	})
})
