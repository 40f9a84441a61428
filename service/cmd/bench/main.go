// Command bench measures the comments service over loopback: it starts the
// built binary once with the memory store and once against a throwaway
// PostgreSQL, drives POST and GET load at each, and prints requests/s and
// p50/p99 latency. It is what `make bench` runs; it asserts nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"microk8s-platform/service/internal/load"
	"microk8s-platform/service/internal/pgtest"
)

func main() {
	bin := flag.String("bin", "bin/comments", "service binary to benchmark")
	dur := flag.Duration("duration", 10*time.Second, "load duration per scenario")
	workers := flag.Int("c", 32, "concurrent clients")
	flag.Parse()
	if err := run(*bin, *dur, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin string, dur time.Duration, workers int) error {
	pg, err := pgtest.Start()
	if err != nil {
		return err
	}
	defer pg.Stop()
	fmt.Printf("comments service benchmark: %d clients, %s per scenario, loopback\n\n", workers, dur)
	for _, st := range []struct{ name, dbURL string }{{"memory", ""}, {"postgres", pg.URL("postgres")}} {
		base, stop, err := startService(bin, st.dbURL)
		if err != nil {
			return err
		}
		post := load.Run(context.Background(), workers, dur, func(w, i int) (string, string, []byte) {
			return "POST", base + "/api/comment/new",
				fmt.Appendf(nil, `{"email":"w%d@example.com","comment":"comment %d","content_id":%d}`, w, i, i%1000)
		})
		// Reads hit ids that now hold a handful of comments each.
		get := load.Run(context.Background(), workers, dur, func(w, i int) (string, string, []byte) {
			return "GET", base + "/api/comment/list/" + strconv.Itoa((w*7919+i)%1000), nil
		}, 200, 404)
		stop()
		fmt.Printf("%-8s POST %s\n%-8s GET  %s\n", st.name, post, st.name, get)
	}
	return nil
}

func startService(bin, dbURL string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port), "LOG_LEVEL=error", "DRAIN_DELAY=0s", "DATABASE_URL="+dbURL)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for range 300 {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("%s did not become ready in 30s", bin)
}
