package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// stalled measures the service's resident memory with n connections that
// each send size bytes of one request header and then stall, as a slowloris
// client does: the figure that MaxHeaderBytes bounds.
func stalled(bin string, n, size int) error {
	p, err := startServer("ours", []string{"LOG_LEVEL=error"}, bin)
	if err != nil {
		return err
	}
	defer p.stop()
	pid := p.pid
	addr := strings.TrimPrefix(p.base, "http://")
	before, err := rss(pid)
	if err != nil {
		return err
	}
	pad := bytes.Repeat([]byte("a"), size)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
		go func() { _, _ = c.Write(pad) }() // blocks or fails once the server stops reading
	}
	time.Sleep(2 * time.Second)
	after, err := rss(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%d connections stalled after %d header bytes each: RSS %.1f MiB -> %.1f MiB\n", n, size, float64(before)/(1<<20), float64(after)/(1<<20))
	return nil
}

// rss reads VmRSS of pid (Linux).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
