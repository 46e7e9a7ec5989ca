package policy

import "sync"

// Session is one session channel's view of its requests: it remembers a refused pty (so that
// the program which follows is refused with that reason, see AnswerDefer), whether a pty was
// granted, and which program started. Safe for concurrent use.
type Session struct {
	r *Rules

	mu       sync.Mutex
	ptyDeny  *Denial
	pty      bool
	program  Program
	finished bool
}

// NewSession starts the state of a new session channel.
func (r *Rules) NewSession() *Session { return &Session{r: r} }

// Request decides a request on this session channel, as Rules.SessionRequest does, except
// that after a refused pty-req the next shell, exec or subsystem request is refused with the
// pty's reason and Answer() == AnswerExit.
func (s *Session) Request(reqType string, data []byte) (Request, *Denial) {
	q, d := s.r.SessionRequest(reqType, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case reqType == "pty-req" && d != nil:
		s.ptyDeny = d
	case reqType == "pty-req":
		s.pty = true
	case q.Program != "" && d == nil && s.ptyDeny != nil:
		d = &Denial{Kind: KindPty, Reason: s.ptyDeny.Reason, final: true}
	case q.Program != "" && d == nil && !s.finished:
		s.program = q.Program
		s.finished = true
	}
	return q, d
}

// Started reports the program the policy let through ("" before; the instance may still refuse
// it: start recording once it replied yes) and whether the channel was granted a pty.
func (s *Session) Started() (Program, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.program, s.pty
}

// Recorded reports whether recording (when enabled) applies to this channel: a pty was
// granted and the program is a shell or a command; scp, sftp and subsystems never are.
func (s *Session) Recorded() bool {
	p, pty := s.Started()
	return pty && (p == ProgramShell || p == ProgramExec)
}
