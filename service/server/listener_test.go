//go:build unix

package server

import (
	"errors"
	"net"
	"testing"
)

// Connections the kernel completed but nobody accepted yet are handed over
// by Accept after Close, not reset; then Accept reports the listener closed
// and the socket refuses new connections.
func TestDrainingListenerHandsOverTheAcceptQueue(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl, ok := newDrainingListener(raw)
	if !ok {
		t.Fatal("a TCP listener was not wrapped")
	}
	const queued = 5
	for range queued {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		c, err := dl.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept after the queue = %v, want net.ErrClosed", err)
			}
			break
		}
		got++
		c.Close()
	}
	if got != queued {
		t.Fatalf("handed over %d queued connections, want %d", got, queued)
	}
	if c, err := net.Dial("tcp", raw.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the socket still accepts connections after the drain")
	}
}
