package sftpfs

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func packet(typ byte, fields ...any) []byte {
	var body bytes.Buffer
	body.WriteByte(typ)
	for _, f := range fields {
		switch v := f.(type) {
		case uint32:
			_ = binary.Write(&body, binary.BigEndian, v)
		case uint64:
			_ = binary.Write(&body, binary.BigEndian, v)
		case string:
			_ = binary.Write(&body, binary.BigEndian, uint32(len(v)))
			body.WriteString(v)
		case []byte:
			body.Write(v)
		}
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(body.Len()))
	return append(out, body.Bytes()...)
}

func TestAttrTapRecoversOpenAndMkdirAttributesFromASplitStream(t *testing.T) {
	var stream []byte
	stream = append(stream, packet(1, uint32(3))...)                                                            // INIT
	stream = append(stream, packet(fxpOpen, uint32(7), "new.txt", uint32(0x1a), uint32(0x4), uint32(0o600))...) // write|creat|trunc, perms
	stream = append(stream, packet(6, uint32(8), "h", uint64(0), make([]byte, 40000))...)                       // a big WRITE
	stream = append(stream, packet(fxpMkdir, uint32(9), "sub/../d", uint32(0x5), uint64(1), uint32(0o2750))...) // size, perms
	stream = append(stream, packet(fxpMkdir, uint32(10), "/abs", uint32(0))...)                                 // no attributes

	tap := &attrTap{r: bytes.NewReader(stream), workDir: "/home/vcap"}
	buf := make([]byte, 1)
	for {
		if _, err := tap.Read(buf); err != nil {
			break
		}
	}

	if m, ok := tap.openMode(0x1a, binary.BigEndian.AppendUint32(nil, 0o600)); !ok || m != 0o600 {
		t.Errorf("openMode = %o, %v; want 600, true", m, ok)
	}
	if _, ok := tap.mkdirMode("/abs"); ok {
		t.Errorf("mkdirMode(/abs) found a mode; the MKDIR sent none")
	}
	// Taking /abs dropped the older /home/vcap/d entry (its handler never ran).
	if _, ok := tap.mkdirMode("/home/vcap/d"); ok {
		t.Errorf("an entry older than one taken is still queued")
	}
}

func TestAttrTapKeepsModesOfMkdirsInOrder(t *testing.T) {
	stream := append(packet(fxpMkdir, uint32(1), "a", uint32(0x4), uint32(0o700)),
		packet(fxpMkdir, uint32(2), "/x/b", uint32(0x6), uint32(1000), uint32(1000), uint32(0o1777))...)
	tap := &attrTap{r: bytes.NewReader(stream), workDir: "/w"}
	_, _ = tap.Read(make([]byte, len(stream)))
	if m, ok := tap.mkdirMode("/w/a"); !ok || m != 0o700 {
		t.Errorf("mkdirMode(/w/a) = %o, %v; want 700, true", m, ok)
	}
	if m, ok := tap.mkdirMode("/x/b"); !ok || m != 0o1777 {
		t.Errorf("mkdirMode(/x/b) = %o, %v; want 1777, true (after uid/gid)", m, ok)
	}
}
