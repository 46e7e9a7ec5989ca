// Package scp implements the server side of OpenSSH's legacy scp/rcp
// protocol ("scp -t" to receive, "scp -f" to send), so that the sshd can
// serve `scp -O` in containers that have no scp binary of their own.
package scp

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrNotSCP is returned by Parse when a command line is not a plain scp
// server invocation that this package can serve itself. Callers should then
// run the command through the shell as usual.
var ErrNotSCP = errors.New("not an scp server invocation")

// Command is a parsed scp server invocation.
type Command struct {
	// Sink is set by -t: the peer sends files to us.
	Sink bool
	// Source is set by -f: we send files to the peer.
	Source bool
	// Recursive is set by -r.
	Recursive bool
	// PreserveTimes is set by -p: modes and times are sent and applied.
	PreserveTimes bool
	// TargetIsDir is set by -d: the sink target must be a directory.
	TargetIsDir bool
	// Verbose is set by -v: diagnostics are written to stderr.
	Verbose bool
	// Paths are the operands after the options, shell quoting removed.
	Paths []string
}

// Parse recognises "scp [-r] [-p] [-d] [-v] -t|-f [--] PATH...". Flags may be
// combined ("-prt") and operands may use POSIX shell quoting ('...', "..."
// and backslash escapes). Anything that would need a real shell to run
// (command separators, redirections, expansions, unbalanced quotes), any
// other option, or a command that is not scp yields an error wrapping
// ErrNotSCP.
func Parse(cmdline string) (*Command, error) {
	words, err := splitWords(cmdline)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSCP, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%w: empty command", ErrNotSCP)
	}
	if words[0] != "scp" && !(strings.HasPrefix(words[0], "/") && path.Base(words[0]) == "scp") {
		return nil, fmt.Errorf("%w: command is not scp", ErrNotSCP)
	}
	c := &Command{}
	i := 1
options:
	for ; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "--":
			i++
			break options
		case len(w) < 2 || w[0] != '-':
			break options
		}
		for _, f := range w[1:] {
			switch f {
			case 't':
				c.Sink = true
			case 'f':
				c.Source = true
			case 'r':
				c.Recursive = true
			case 'p':
				c.PreserveTimes = true
			case 'd':
				c.TargetIsDir = true
			case 'v':
				c.Verbose = true
			default:
				return nil, fmt.Errorf("%w: unsupported option -%c", ErrNotSCP, f)
			}
		}
	}
	if c.Sink == c.Source {
		return nil, fmt.Errorf("%w: exactly one of -t and -f is required", ErrNotSCP)
	}
	c.Paths = append([]string{}, words[i:]...)
	return c, nil
}

// splitWords splits a command line into words the way a POSIX shell would
// for simple commands. It refuses input whose meaning depends on a shell
// (operators, substitutions, variables, comments, brace expansion), so that
// such commands are left to the real shell.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch ch {
		case ' ', '\t':
			flush()
		case '\\':
			if i+1 >= len(s) {
				return nil, errors.New("trailing backslash")
			}
			i++
			if s[i] == '\n' {
				continue // line continuation
			}
			cur.WriteByte(s[i])
			inWord = true
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case '"':
			i++
			closed := false
			for ; i < len(s); i++ {
				c := s[i]
				if c == '"' {
					closed = true
					break
				}
				if c == '$' || c == '`' {
					return nil, errors.New("expansion inside double quotes")
				}
				if c == '\\' && i+1 < len(s) {
					switch s[i+1] {
					case '"', '\\', '$', '`':
						i++
						c = s[i]
					case '\n':
						i++
						continue
					}
				}
				cur.WriteByte(c)
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case '\n', ';', '&', '|', '<', '>', '(', ')', '`', '$', '{', '}':
			return nil, fmt.Errorf("shell syntax %q", ch)
		case '#':
			if !inWord {
				return nil, errors.New("shell comment")
			}
			cur.WriteByte(ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words, nil
}
