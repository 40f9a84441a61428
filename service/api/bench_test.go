package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

// The handler benchmarks are for profiling (go test -bench . -cpuprofile);
// the throughput figure that matters is make bench's ratio to a bare handler.

func benchHandler(b *testing.B) (http.Handler, *store.Memory) {
	s := store.NewMemory()
	return New(s, metrics.New(), slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))).Handler(), s
}

func BenchmarkPOST(b *testing.B) {
	h, _ := benchHandler(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"email":"w%d@example.com","comment":"comment %d","content_id":%d}`, i%32, i, i%1000)
		req := httptest.NewRequest("POST", "/api/comment/new", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkGET(b *testing.B) {
	h, s := benchHandler(b)
	for i := range 100 {
		_ = s.Add(context.Background(), "7", store.Comment{Email: fmt.Sprintf("w%d@example.com", i), Comment: fmt.Sprintf("comment %d", i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/comment/list/7", nil))
	}
}

// The same POST through the store deadline (store.WithDeadline) that the
// server puts around a database store (the memory store needs none; this
// one embeds it, so it keeps the wrapper).
func BenchmarkPOSTWithStoreDeadline(b *testing.B) {
	h := New(store.WithDeadline(struct{ *store.Memory }{store.NewMemory()}, 2e9), metrics.New(), slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))).Handler()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body := fmt.Sprintf(`{"email":"w%d@example.com","comment":"comment %d","content_id":%d}`, i%32, i, i%1000)
		req := httptest.NewRequest("POST", "/api/comment/new", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}
