package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"microk8s-platform/service/config"
	"microk8s-platform/service/internal/pgtest"
	"microk8s-platform/service/store"
)

// serveWith runs Serve on loopback for the test and returns its base URL.
func serveWith(t *testing.T, s store.Store, cfg config.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = Serve(ctx, ln, s, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil))); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

type answer struct {
	code   int
	status string
	msg    string
}

// call sends one request with a client that would wait a minute: the
// server must answer long before.
func call(t *testing.T, method, url, body string) answer {
	t.Helper()
	client := &http.Client{Timeout: time.Minute}
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var s struct{ Status, Message string }
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &s)
	return answer{resp.StatusCode, s.Status, s.Message}
}

const newComment = `{"email":"a@example.com","comment":"x","content_id":"hung"}`

// checkHungThenRecovered: with the store hung, POST and GET list answer 503
// UNAVAILABLE naming the deadline; once it is back, they work again
// without a restart.
func checkHungThenRecovered(t *testing.T, base string, hang, recover func()) {
	t.Helper()
	if a := call(t, "POST", base+"/api/comment/new", newComment); a.code != 200 {
		t.Fatalf("POST before the hang = %+v", a)
	}
	hang()
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/comment/new", newComment},
		{"GET", "/api/comment/list/hung", ""},
	} {
		a := call(t, r.method, base+r.path, r.body)
		if a.code != 503 || a.status != "UNAVAILABLE" || !strings.Contains(a.msg, "did not answer within") {
			t.Errorf("%s %s with the store hung = %+v, want 503 UNAVAILABLE naming the deadline", r.method, r.path, a)
		}
	}
	recover()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := call(t, "GET", base+"/api/comment/list/hung", "")
		if a.code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %+v 30s after the store came back", a)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := call(t, "POST", base+"/api/comment/new", newComment); a.code != 200 {
		t.Fatalf("POST after recovery = %+v", a)
	}
}

// blockingStore hangs every call while blocked, ignoring its context.
type blockingStore struct {
	*store.Memory
	gate atomic.Pointer[chan struct{}] // closed = open
}

func (b *blockingStore) wait() { <-*b.gate.Load() }
func (b *blockingStore) Add(ctx context.Context, id string, c store.Comment) error {
	b.wait()
	return b.Memory.Add(context.Background(), id, c)
}
func (b *blockingStore) List(ctx context.Context, id string) ([]store.Comment, error) {
	b.wait()
	return b.Memory.List(context.Background(), id)
}

func TestHungStoreGets503AndRecovers(t *testing.T) {
	open := make(chan struct{})
	close(open)
	b := &blockingStore{Memory: store.NewMemory()}
	b.gate.Store(&open)
	cfg := config.Defaults()
	cfg.StoreTimeout = 200 * time.Millisecond
	cfg.DrainDelay = 0
	base := serveWith(t, b, cfg)
	release := make(chan struct{})
	checkHungThenRecovered(t, base, func() { b.gate.Store(&release) }, func() { close(release); b.gate.Store(&open) })
}

// The same against real PostgreSQL, frozen with SIGSTOP: connections stay
// open and nothing answers, as in a network partition.
func TestFrozenPostgresGets503AndRecovers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pgtest.Freeze reads /proc")
	}
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.OpenPostgres(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.StoreTimeout = 500 * time.Millisecond
	cfg.DrainDelay = 0
	base := serveWith(t, s, cfg)
	thawed := false
	defer func() {
		if !thawed {
			_ = pg.Thaw()
		}
	}()
	checkHungThenRecovered(t, base,
		func() {
			if err := pg.Freeze(); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			if err := pg.Thaw(); err != nil {
				t.Fatal(err)
			}
			thawed = true
		})
}

// Headers are capped at MaxHeaderBytes (Go answers 431 past it, with its
// 4096-byte slack); what Kong can forward (4 x 8 KiB) still fits.
func TestHeaderCap(t *testing.T) {
	cfg := config.Defaults()
	cfg.DrainDelay = 0
	base := serveWith(t, store.NewMemory(), cfg)
	for _, c := range []struct {
		size int
		want int
	}{{32 << 10, 200}, {MaxHeaderBytes + 8<<10, 431}} {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		for i := 0; i*4096 < c.size; i++ {
			req.Header.Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("a", 4090))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d header bytes: %v", c.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%d header bytes: %d, want %d", c.size, resp.StatusCode, c.want)
		}
	}
}
