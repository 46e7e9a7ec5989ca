package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/app-ssh/app-ssh/internal/policy"
	"github.com/app-ssh/app-ssh/internal/sshd/payload"
)

func jsonLines(b []byte) []map[string]any {
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		ExpectWithOffset(1, json.Unmarshal(l, &m)).To(Succeed(), string(l))
		out = append(out, m)
	}
	return out
}

var _ = Describe("channel events", func() {
	id := Identity{User: "alice", UserID: "uaa-user-1", SSHUser: "cf:app-guid/1", Scheme: "cf", AppGUID: "app-guid", Index: 1,
		ProcessGUID: "app-guid-v1", InstanceGUID: "inst-1", ClientAddr: "192.0.2.1:5555"}
	identity := map[string]any{"user": "alice", "user_id": "uaa-user-1", "ssh_user": "cf:app-guid/1", "scheme": "cf",
		"app_guid": "app-guid", "index": 1.0, "process_guid": "app-guid-v1", "instance_guid": "inst-1", "client_addr": "192.0.2.1:5555"}

	It("writes one event per channel, field by field, linked by session_id", func() {
		var buf bytes.Buffer
		l := New(&buf)
		s := l.Start(id, "c0ffee")

		sh := s.OpenChannel("c0ffee", 0, "session", FromClient)
		sh.Pty()
		sh.EnvName("LANG")
		sh.Program("shell", "", "")
		sh.Recording("20261201T143000.000Z-c0ffee-0.cast", true, nil)
		sh.Bytes(10, 200)
		sh.Bytes(1, 2)
		sh.Exit(0)
		sh.End("client closed")
		sh.End("twice")

		ex := s.OpenChannel("c0ffee", 1, "session", FromClient)
		ex.Program("exec", "sh -c 'exit 3'", "")
		ex.Denied("env", "environment variable LD_PRELOAD is not accepted by the operator's policy")
		ex.Exit(3)
		ex.End("exited")

		ft := s.OpenChannel("c0ffee", 2, "direct-tcpip", FromClient)
		ft.ForwardTarget("127.0.0.1:8080")
		ft.ExitSignal("TERM")
		ft.Recording("", false, errors.New("disk full"))
		ft.End("closed")

		s.ChannelRefused("c0ffee", 3, "direct-tcpip", FromClient, "10.0.0.9:22", Denial{Kind: "local-forward", Reason: "port forwarding to 10.0.0.9:22 is not permitted"})
		s.RequestRefused("c0ffee", "tcpip-forward", "localhost:9000", Denial{Kind: "remote-forward", Reason: "remote port forwarding (-R) is disabled"})
		s.RemoteForward("c0ffee", "localhost:9001")
		s.End("c0ffee", "client closed")

		ev := jsonLines(buf.Bytes())
		Expect(ev).To(HaveLen(8))
		Expect(ev[0]["event"]).To(Equal("session-start"))
		for _, e := range ev[1:7] {
			Expect(e["session_id"]).To(Equal("c0ffee"))
			for k, v := range identity {
				Expect(e).To(HaveKeyWithValue(k, v))
			}
			Expect(e["time"]).To(MatchRegexp(`^\d{4}-\d\d-\d\dT.*Z$`))
		}
		strip := func(m map[string]any, keys ...string) map[string]any {
			out := map[string]any{}
			for k, v := range m {
				if _, ok := identity[k]; ok || k == "time" || k == "session_id" {
					continue
				}
				out[k] = v
			}
			for _, k := range keys {
				Expect(out).To(HaveKey(k))
				delete(out, k)
			}
			return out
		}
		Expect(ev[1]["start_time"]).To(MatchRegexp(`Z$`))
		Expect(ev[1]["duration_seconds"]).To(BeNumerically(">=", 0))
		Expect(strip(ev[1], "start_time", "duration_seconds")).To(Equal(map[string]any{
			"event": "channel", "channel": 0.0, "channel_type": "session", "direction": "client", "program": "shell",
			"pty": true, "env_names": []any{"LANG"}, "exit_status": 0.0, "bytes_to_backend": 11.0, "bytes_to_client": 202.0,
			"recording_file": "20261201T143000.000Z-c0ffee-0.cast", "recording_capped": true, "end_reason": "client closed",
		}))
		Expect(strip(ev[2], "start_time", "duration_seconds")).To(Equal(map[string]any{
			"event": "channel", "channel": 1.0, "channel_type": "session", "direction": "client", "program": "exec",
			"command": "sh -c 'exit 3'", "pty": false, "exit_status": 3.0, "bytes_to_backend": 0.0, "bytes_to_client": 0.0,
			"denials":    []any{map[string]any{"kind": "env", "reason": "environment variable LD_PRELOAD is not accepted by the operator's policy"}},
			"end_reason": "exited",
		}))
		Expect(strip(ev[3], "start_time", "duration_seconds")).To(Equal(map[string]any{
			"event": "channel", "channel": 2.0, "channel_type": "direct-tcpip", "direction": "client",
			"forward_target": "127.0.0.1:8080", "exit_signal": "TERM", "recording_error": "disk full",
			"bytes_to_backend": 0.0, "bytes_to_client": 0.0, "end_reason": "closed",
		}))
		Expect(strip(ev[4])).To(Equal(map[string]any{
			"event": "channel-refused", "channel": 3.0, "channel_type": "direct-tcpip", "direction": "client",
			"forward_target": "10.0.0.9:22",
			"denied":         map[string]any{"kind": "local-forward", "reason": "port forwarding to 10.0.0.9:22 is not permitted"},
		}))
		Expect(strip(ev[5])).To(Equal(map[string]any{
			"event": "request-refused", "request_type": "tcpip-forward", "listen_address": "localhost:9000",
			"denied": map[string]any{"kind": "remote-forward", "reason": "remote port forwarding (-R) is disabled"},
		}))
		Expect(strip(ev[6])).To(Equal(map[string]any{
			"event": "remote-forward", "request_type": "tcpip-forward", "listen_address": "localhost:9001",
		}))
		Expect(ev[7]["event"]).To(Equal("session-end"))
	})

	It("never writes env values, passwords or codes, and caps what clients send", func() {
		const (
			envValue = "hunter2-env-value"
			password = "one-time-code-8f3k"
		)
		var buf bytes.Buffer
		l := New(&buf)
		s := l.Start(id, "abc")
		r, errs := policy.Compile(policy.Default())
		Expect(errs).To(BeEmpty())
		ch := s.OpenChannel("abc", 0, "session", FromClient)
		// What the wiring will do: decode each request with the policy, record what it says.
		for _, name := range []string{"LANG", "LD_PRELOAD", "AWS_SECRET_ACCESS_KEY", strings.Repeat("N", 5000)} {
			q, d := r.SessionRequest("env", append(payload.String(name), payload.String(envValue)...))
			if d != nil {
				ch.Denied(string(d.Kind), d.Reason)
			} else {
				ch.EnvName(q.EnvName)
			}
		}
		pty := append(payload.String("xterm"), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 80), 24)...)
		pty = append(pty, make([]byte, 8)...)
		pty = append(pty, payload.String("")...)
		q, d := r.SessionRequest("pty-req", pty)
		Expect(d).To(BeNil())
		Expect(q.Term).To(Equal("xterm"))
		ch.Pty()
		q, _ = r.SessionRequest("exec", payload.String(strings.Repeat("x", 10000)))
		ch.Program(string(q.Program), q.Command, "")
		ch.Denied("x", strings.Repeat("r", 5000))
		ch.End("closed")
		s.End("abc", "closed")

		out := buf.String()
		Expect(out).NotTo(ContainSubstring(envValue))
		Expect(out).NotTo(ContainSubstring(password))
		ev := jsonLines(buf.Bytes())
		Expect(ev[1]["env_names"]).To(Equal([]any{"LANG"}))
		Expect(ev[1]["denials"]).To(HaveLen(4))
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			Expect(len(line)).To(BeNumerically("<", MaxCommandBytes+4096), "every field is capped")
		}
		Expect(ev[1]["command"]).To(HaveSuffix(" bytes]"))
	})

	It("is a no-op without a log", func() {
		var l *Log
		s := l.Start(id, "x")
		c := s.OpenChannel("x", 0, "session", FromClient)
		c.Pty()
		c.EnvName("A")
		c.End("")
		s.ChannelRefused("x", 1, "x11", FromBackend, "", Denial{})
		s.RequestRefused("x", "tcpip-forward", "", Denial{})
		var ns *Session
		Expect(ns.OpenChannel("x", 0, "session", FromClient)).To(BeNil())
		ns.RemoteForward("x", "l")
	})
})
