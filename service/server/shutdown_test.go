package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"microk8s-platform/service/config"
	"microk8s-platform/service/store"
)

// closeTimeListener records when the listening socket was really closed.
type closeTimeListener struct {
	*net.TCPListener
	once   sync.Once
	closed atomic.Int64 // UnixNano; 0 while open
}

func (l *closeTimeListener) Close() error {
	l.once.Do(func() { l.closed.Store(time.Now().UnixNano()) })
	return l.TCPListener.Close()
}

// shutdownRun is what one load-then-shutdown run saw.
type shutdownRun struct {
	ok, reusedOK         int64
	failedBeforeClose    int64 // transport errors on requests written before the listener closed
	failedReusedBefore   int64 // ... of which on a reused keep-alive connection
	refusedOrAfterClose  int64 // errors on requests written after it closed (or never written)
	nonOK                int64
	firstFailure         string
	listenerClosedAtNano int64
}

// loadThenShutdown runs Serve on loopback, drives keep-alive POSTs from
// many clients, cancels Serve's context (what SIGTERM does in cmd/comments)
// while they run, and classifies every request by when it was written
// relative to the moment the listening socket closed.
func loadThenShutdown(t *testing.T) shutdownRun {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &closeTimeListener{TCPListener: raw.(*net.TCPListener)}
	base := "http://" + raw.Addr().String()
	cfg := config.Defaults()
	cfg.DrainDelay = 100 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ln, store.NewMemory(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	}()

	var run shutdownRun
	var mu sync.Mutex
	type failure struct {
		wrote  int64 // UnixNano, 0 if never written
		failed int64
		reused bool
		err    error
	}
	var failures []failure
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 15 * time.Second}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for c := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var wrote atomic.Int64
				var reused atomic.Bool
				trace := &httptrace.ClientTrace{
					GotConn:      func(info httptrace.GotConnInfo) { reused.Store(info.Reused) },
					WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(time.Now().UnixNano()) },
				}
				body := fmt.Sprintf(`{"email":"c%d@example.com","comment":"n%d","content_id":"load"}`, c, i)
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", base+"/api/comment/new", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, failure{wrote.Load(), time.Now().UnixNano(), reused.Load(), err})
					mu.Unlock()
					time.Sleep(time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == 200 {
					run.ok++
					if reused.Load() {
						run.reusedOK++
					}
				} else {
					run.nonOK++
				}
				mu.Unlock()
			}
		})
	}
	// Shut down once the clients are well under way.
	for sent.Load() < 2000 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after a clean shutdown", err)
	}
	close(stop)
	wg.Wait()

	closedAt := ln.closed.Load()
	if closedAt == 0 {
		t.Fatal("the listener was never closed")
	}
	run.listenerClosedAtNano = closedAt
	for _, f := range failures {
		if f.wrote != 0 && f.wrote < closedAt {
			run.failedBeforeClose++
			if f.reused {
				run.failedReusedBefore++
			}
			if run.firstFailure == "" {
				run.firstFailure = fmt.Sprintf("reused=%v, written %s before the listener closed, failed %s after: %v", f.reused, time.Duration(closedAt-f.wrote), time.Duration(f.failed-closedAt), f.err)
			}
		} else {
			run.refusedOrAfterClose++
		}
	}
	return run
}

// TestShutdownDropsNothingSentBeforeTheListenerCloses repeats the
// load-then-shutdown run: a request written before the listening socket
// closed, on a fresh or a reused keep-alive connection, must get its answer.
// Behind Kong, which keeps upstream connections alive and does not retry a
// POST it has sent, each such failure would be a 502 during a rollout.
func TestShutdownDropsNothingSentBeforeTheListenerCloses(t *testing.T) {
	runs := 15
	if testing.Short() {
		runs = 3
	}
	var total shutdownRun
	for i := range runs {
		r := loadThenShutdown(t)
		total.ok += r.ok
		total.reusedOK += r.reusedOK
		total.failedBeforeClose += r.failedBeforeClose
		total.failedReusedBefore += r.failedReusedBefore
		total.refusedOrAfterClose += r.refusedOrAfterClose
		total.nonOK += r.nonOK
		if r.failedBeforeClose > 0 {
			t.Errorf("run %d: %d requests written before the listener closed failed (%d on reused connections); first: %s",
				i, r.failedBeforeClose, r.failedReusedBefore, r.firstFailure)
		}
		if r.nonOK > 0 {
			t.Errorf("run %d: %d requests got a non-200 answer", i, r.nonOK)
		}
	}
	t.Logf("%d runs: %d answered (%d on reused connections), %d failed though written before the listener closed (%d reused), %d refused or written after it closed",
		runs, total.ok, total.reusedOK, total.failedBeforeClose, total.failedReusedBefore, total.refusedOrAfterClose)
	if total.reusedOK == 0 {
		t.Fatal("no request reused a connection: the test did not exercise keep-alive")
	}
}
