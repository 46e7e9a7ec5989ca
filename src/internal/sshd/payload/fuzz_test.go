package payload

import (
	"testing"
)

// The decoders must never panic, and whatever they accept must respect the limits.

func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x04LANG\x00\x00\x00\x05C.UTF"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEnv(b)
		if err != nil {
			return
		}
		if e.Name == "" || len(e.Name) > MaxEnvNameLen || len(e.Value) > MaxEnvValueLen {
			t.Fatalf("accepted out-of-limit env %q", e.Name)
		}
		if len(String(e.Name))+len(String(e.Value)) != len(b) {
			t.Fatalf("accepted %d bytes but decoded fewer", len(b))
		}
	})
}

func FuzzParsePtyReq(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x05xterm\x00\x00\x00\x50\x00\x00\x00\x18\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x35\x00\x00\x00\x01\x80\x00\x00\x96\x00"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x01x\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePtyReq(b)
		if err != nil {
			return
		}
		if len(p.Term) > MaxTermLen || p.Cols > MaxDimension || p.Rows > MaxDimension ||
			p.WidthPx > MaxDimension || p.HeightPx > MaxDimension {
			t.Fatalf("accepted out-of-limit pty-req %+v", p)
		}
		for _, m := range p.Modes {
			if m.Opcode == 0 || m.Opcode >= 160 {
				t.Fatalf("accepted opcode %d", m.Opcode)
			}
		}
		if len(p.Modes)*5 > MaxModesLen {
			t.Fatalf("more modes than the limit allows: %d", len(p.Modes))
		}
	})
}

func FuzzParseChannelAndGlobal(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x09localhost\x00\x00\x1f\x90\x00\x00\x00\x09127.0.0.1\x00\x00\x15\xb3"), uint8(0))
	f.Add([]byte("\x00\x00\x00\x09localhost\x00\x00\x00\x00"), uint8(1))
	f.Add([]byte("\x00\x00\x00\x04TERM"), uint8(2))
	f.Add([]byte("\x00\x00\x00\x07echo hi"), uint8(3))
	f.Add([]byte("\x00\x00\x00\x50\x00\x00\x00\x18\x00\x00\x00\x00\x00\x00\x00\x00"), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		switch which % 6 {
		case 0:
			d, err := ParseDirectTCPIP(b)
			if err == nil && (d.Port == 0 || d.Port > 0xFFFF || d.Host == "" || len(d.Host) > MaxHostLen) {
				t.Fatalf("accepted %+v", d)
			}
		case 1:
			fw, err := ParseTCPIPForward(b)
			if err == nil && (fw.Port > 0xFFFF || len(fw.Address) > MaxHostLen) {
				t.Fatalf("accepted %+v", fw)
			}
		case 2:
			s, err := ParseSignal(b)
			if err == nil && len(s) > MaxSignalNameLen {
				t.Fatalf("accepted signal of %d bytes", len(s))
			}
		case 3:
			c, err := ParseExec(b)
			if err == nil && len(c) > MaxCommandLen {
				t.Fatalf("accepted command of %d bytes", len(c))
			}
		case 4:
			w, err := ParseWindowChange(b)
			if err == nil && (w.Cols > MaxDimension || w.Rows > MaxDimension) {
				t.Fatalf("accepted %+v", w)
			}
		case 5:
			s, err := ParseSubsystem(b)
			if err == nil && len(s) > MaxSubsystemLen {
				t.Fatalf("accepted subsystem of %d bytes", len(s))
			}
		}
	})
}
