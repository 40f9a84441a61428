package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"microk8s-platform/service/config"
	"microk8s-platform/service/store"
)

// slowStore makes each Add take a while so that requests are in flight when
// shutdown starts, and counts the adds that succeeded.
type slowStore struct {
	*store.Memory
	delay    time.Duration
	inFlight atomic.Int64
	added    atomic.Int64
	// failedAdds counts adds that failed: accepted requests that were cut
	// off (context cancelled) or found the store already closed.
	failedAdds atomic.Int64
}

func (s *slowStore) Add(ctx context.Context, id string, c store.Comment) error {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	time.Sleep(s.delay)
	err := s.Memory.Add(ctx, id, c)
	if err == nil {
		s.added.Add(1)
	}
	if err != nil {
		s.failedAdds.Add(1)
	}
	return err
}

func TestGracefulShutdownUnderLoad(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	st := &slowStore{Memory: store.NewMemory(), delay: 30 * time.Millisecond}
	cfg := config.Defaults()
	cfg.DrainDelay = 300 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, st, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil))) }()

	// Clients post until the server stops accepting connections.
	const clients = 16
	var ok, bad, connErrs atomic.Int64
	var badMu sync.Mutex
	var badCodes []int
	var wg sync.WaitGroup
	stopClients := make(chan struct{})
	for c := range clients {
		wg.Go(func() {
			client := &http.Client{Timeout: 15 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stopClients:
					return
				default:
				}
				body := fmt.Sprintf(`{"email":"c%d@example.com","comment":"n%d","content_id":"load"}`, c, i)
				resp, err := client.Post(base+"/api/comment/new", "application/json", strings.NewReader(body))
				if err != nil {
					connErrs.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					bad.Add(1)
					badMu.Lock()
					badCodes = append(badCodes, resp.StatusCode)
					badMu.Unlock()
				}
			}
		})
	}

	// A prober watches readiness flip while the listener is still open.
	sawDraining := make(chan bool, 1)
	go func() {
		for {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				sawDraining <- false
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 503 {
				sawDraining <- true
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	// Shut down mid-stream: only once requests are in flight.
	deadline := time.Now().Add(10 * time.Second)
	for st.inFlight.Load() < clients/2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := st.inFlight.Load(); n < clients/2 {
		t.Fatalf("only %d requests in flight before shutdown", n)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after a clean shutdown", err)
	}
	close(stopClients)
	wg.Wait()
	// Handlers cut off by a forced close would still be running: let them end.
	for st.inFlight.Load() > 0 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(time.Millisecond)
	}

	if n := st.failedAdds.Load(); n != 0 {
		t.Errorf("%d accepted requests were cut off or found the store closed", n)
	}
	if !<-sawDraining {
		t.Error("/readyz never answered 503 before the listener closed")
	}
	if bad.Load() != 0 {
		t.Errorf("%d requests got non-200 answers: %v", bad.Load(), badCodes)
	}
	// Every comment the server stored was acknowledged to its client, and
	// nothing acknowledged was lost: no accepted request failed.
	if ok.Load() != st.added.Load() {
		t.Errorf("clients got %d successes, the store holds %d comments", ok.Load(), st.added.Load())
	}
	if !errors.Is(st.Memory.Ping(context.Background()), store.ErrClosed) {
		t.Error("store not closed after shutdown")
	}
	t.Logf("acknowledged %d, connection errors after shutdown %d", ok.Load(), connErrs.Load())
	if ok.Load() == 0 {
		t.Fatal("no request succeeded at all")
	}
}

func TestServeFailsWhenListenerDies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	s := store.NewMemory()
	err = Serve(context.Background(), ln, s, config.Defaults(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "serve") {
		t.Fatalf("Serve on a closed listener = %v", err)
	}
	if s.Ping(context.Background()) == nil {
		t.Error("store left open after Serve failed")
	}
}
