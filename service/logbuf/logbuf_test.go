package logbuf

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write the buffer makes to its destination.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) all() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls), strings.Join(w.calls, "")
}

// Lines are batched: many lines, few writes, in order, none lost.
func TestLinesAreBatchedInOrderAndNoneIsLost(t *testing.T) {
	dst := &writes{}
	b := New(dst, 4096, time.Hour)
	var want bytes.Buffer
	for i := range 1000 {
		line := fmt.Sprintf(`{"msg":"request","n":%d}`+"\n", i)
		want.WriteString(line)
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	n, got := dst.all()
	if got != want.String() {
		t.Fatal("lines lost or out of order")
	}
	if n >= 100 || n < 2 {
		t.Errorf("%d writes for 1000 lines of ~25 bytes into a 4096-byte buffer", n)
	}
}

// What sits in the buffer goes out by the interval at the latest.
func TestTheIntervalWritesOutALoneLine(t *testing.T) {
	dst := &writes{}
	b := New(dst, 1<<16, 10*time.Millisecond)
	defer b.Close()
	_, _ = b.Write([]byte("one line\n"))
	for start := time.Now(); ; {
		if n, got := dst.all(); n == 1 && got == "one line\n" {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a buffered line never went out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A line larger than the buffer is written whole, after what was before it.
func TestALongLineGoesOutWhole(t *testing.T) {
	dst := &writes{}
	b := New(dst, 16, time.Hour)
	_, _ = b.Write([]byte("short\n"))
	long := strings.Repeat("x", 100) + "\n"
	_, _ = b.Write([]byte(long))
	n, got := dst.all()
	if n != 2 || got != "short\n"+long {
		t.Errorf("%d writes: %q", n, got)
	}
	_ = b.Close()
	if _, err := b.Write([]byte("after close\n")); err != nil {
		t.Fatal(err)
	}
	if _, got := dst.all(); !strings.HasSuffix(got, "after close\n") {
		t.Error("a write after Close was kept, not written")
	}
}

// Concurrent writers (every request's goroutine) interleave whole lines.
func TestConcurrentLinesStayWhole(t *testing.T) {
	dst := &writes{}
	b := New(dst, 512, time.Millisecond)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_, _ = fmt.Fprintf(b, "writer %d line %d\n", w, i)
			}
		})
	}
	wg.Wait()
	_ = b.Close()
	_, got := dst.all()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		var w, i int
		if n, err := fmt.Sscanf(l, "writer %d line %d", &w, &i); n != 2 || err != nil {
			t.Fatalf("torn line %q", l)
		}
	}
}
