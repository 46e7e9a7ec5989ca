package relay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"
)

// chunkReader returns its data in the chunk sizes given (cycling), like a channel handing out
// what has arrived so far.
type chunkReader struct {
	data   []byte
	sizes  []int
	i      int
	nreads int
	maxBuf int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.nreads++
	if len(p) > r.maxBuf {
		r.maxBuf = len(p)
	}
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(r.sizes[r.i%len(r.sizes)], len(p), len(r.data))
	r.i++
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestCopyDataDeliversEveryByteInOrder(t *testing.T) {
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	for _, sizes := range [][]int{{1}, {idleBufSize}, {bulkBufSize}, {7, idleBufSize, bulkBufSize, 1000, bulkBufSize - 1}} {
		var out bytes.Buffer
		r := &chunkReader{data: data, sizes: sizes}
		if len(sizes) == 1 && sizes[0] == 1 {
			r.data = data[:64<<10]
		}
		want := r.data
		n, err := copyData(&out, r)
		if err != nil || n != int64(len(want)) || !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("sizes %v: copied %d of %d, err %v, equal %v", sizes, n, len(want), err, bytes.Equal(out.Bytes(), want))
		}
	}
}

func TestCopyDataUsesBulkBufferOnlyWhileDataKeepsComing(t *testing.T) {
	// Small reads never fill the idle buffer: the bulk buffer is never taken.
	r := &chunkReader{data: make([]byte, 100<<10), sizes: []int{100}}
	if _, err := copyData(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if r.maxBuf != idleBufSize {
		t.Fatalf("small reads used a %d-byte buffer, want %d", r.maxBuf, idleBufSize)
	}
	// Full reads switch to the bulk buffer.
	r = &chunkReader{data: make([]byte, 1<<20), sizes: []int{bulkBufSize}}
	if _, err := copyData(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if r.maxBuf != bulkBufSize {
		t.Fatalf("bulk reads used at most %d bytes, want %d", r.maxBuf, bulkBufSize)
	}
	if want := 1 + (1<<20-idleBufSize)/bulkBufSize + 2; r.nreads > want {
		t.Fatalf("%d reads for 1 MiB, want at most %d", r.nreads, want)
	}
}

// TestCopyDataForwardsBeforeWaiting: what was read is written before the next (blocking) read.
func TestCopyDataForwardsBeforeWaiting(t *testing.T) {
	pr, pw := io.Pipe()
	out := make(chan []byte, 10)
	done := make(chan error, 1)
	go func() {
		_, err := copyData(writerFunc(func(p []byte) (int, error) {
			out <- append([]byte(nil), p...)
			return len(p), nil
		}), pr)
		done <- err
	}()
	for _, msg := range []string{"a", string(bytes.Repeat([]byte("x"), idleBufSize)), "b"} {
		if _, err := pw.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-out:
			if string(got) != msg {
				t.Fatalf("got %q, want %q", got, msg)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d bytes written to the source were not forwarded while it stayed open", len(msg))
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCopyDataReportsWriteErrors(t *testing.T) {
	boom := errors.New("boom")
	r := &chunkReader{data: make([]byte, 10), sizes: []int{10}}
	n, err := copyData(writerFunc(func(p []byte) (int, error) { return 3, boom }), r)
	if !errors.Is(err, boom) || n != 3 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	r = &chunkReader{data: make([]byte, 10), sizes: []int{10}}
	_, err = copyData(writerFunc(func(p []byte) (int, error) { return 3, nil }), r)
	if !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: err=%v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
