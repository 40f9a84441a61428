//go:build unix

package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// drainingListener hands over, when closed, the connections the kernel has
// already completed but nobody has accepted yet, instead of resetting them.
//
// Closing a listening socket outright resets every connection still in its
// accept queue, and a client may already have written its request on one:
// under load at shutdown that is a failed request on a fresh connection.
// So Close only wakes the accept loop, which then takes the queue with
// non-blocking accept(2) calls, returning each connection, until the kernel
// says it is empty (EAGAIN); only then does the socket close. A deadline
// cannot tell "empty" apart from "not looked yet": an Accept whose deadline
// has passed fails before it tries the queue (internal/poll prepareRead),
// and a loaded machine can delay the goroutine past any deadline.
//
// Serve (net/http) tracks each connection Accept returned before it calls
// Accept again, so every connection handed over is served and waited for.
type drainingListener struct {
	drainable
	closing   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// drainable is a listener whose socket can be reached (syscall.Conn) and
// whose Accept can be woken (SetDeadline), as *net.TCPListener.
type drainable interface {
	net.Listener
	syscall.Conn
	SetDeadline(time.Time) error
}

// newDrainingListener wraps ln when it is drainable; the bool says whether
// it did.
func newDrainingListener(ln net.Listener) (*drainingListener, bool) {
	if d, ok := ln.(drainable); ok {
		return &drainingListener{drainable: d}, true
	}
	return nil, false
}

func (l *drainingListener) Accept() (net.Conn, error) {
	for !l.closing.Load() {
		c, err := l.drainable.Accept()
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return c, err
		}
		// The deadline is Close waking us: drain below.
	}
	for {
		c, err := l.acceptQueued()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ECONNABORTED) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			err = net.ErrClosed // the queue is empty: close now
		}
		l.closeOnce.Do(func() { l.closeErr = l.drainable.Close() })
		return nil, err
	}
}

// acceptQueued takes one connection from the accept queue without
// blocking; EAGAIN means there is none.
func (l *drainingListener) acceptQueued() (net.Conn, error) {
	rc, err := l.drainable.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	if err := rc.Control(func(fd uintptr) { nfd, _, aerr = syscall.Accept(int(fd)) }); err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	syscall.CloseOnExec(nfd)
	f := os.NewFile(uintptr(nfd), "accepted")
	defer f.Close() // FileConn holds its own duplicate
	return net.FileConn(f)
}

// Close starts the drain: the blocked Accept wakes at once (its deadline is
// now), takes what is queued and closes the socket.
func (l *drainingListener) Close() error {
	if l.closing.Swap(true) {
		return nil
	}
	return l.drainable.SetDeadline(time.Now())
}

// closeNow closes the socket whether or not Accept drained it (when Serve
// has already returned for another reason).
func (l *drainingListener) closeNow() error {
	l.closing.Store(true)
	l.closeOnce.Do(func() { l.closeErr = l.drainable.Close() })
	return l.closeErr
}
