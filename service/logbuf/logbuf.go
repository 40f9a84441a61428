// Package logbuf batches the service's log lines into few writes. The
// access log writes a line per request; written one by one to stdout (a
// pipe the container runtime reads), each line is a system call, which on
// one core at tens of thousands of requests a second is a sizeable share
// of the work. Lines are kept in a buffer and written together when it
// fills, every interval, on Flush (the log handler flushes after a warning
// or an error, so those are never late) and on Close.
//
// What a crash can lose is the last interval's lines: the service flushes
// on every orderly exit.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// Writer is a buffered, periodically flushed, concurrency-safe writer.
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	size   int
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// New buffers up to size bytes for w and writes them out every interval
// at the latest.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	b := &Writer{w: w, buf: make([]byte, 0, size), size: size, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write keeps p (one log line) for the next flush; a full buffer is
// written first, and a line larger than the buffer goes out at once.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.size {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > b.size {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *Writer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// Close flushes and stops the interval; later writes go straight through.
func (b *Writer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	err := b.flushLocked()
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return err
}
