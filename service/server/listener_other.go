//go:build !unix

package server

import "net"

// drainingListener is Unix-only (accept(2) on the listening socket); the
// service's image is Linux. Elsewhere the listener closes outright.
type drainingListener struct{ net.Listener }

func newDrainingListener(ln net.Listener) (*drainingListener, bool) { return nil, false }

func (l *drainingListener) closeNow() error { return l.Close() }
