package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsRequestsErrorsAndPercentiles(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	res := Run(context.Background(), 4, 200*time.Millisecond, func(w, i int) (string, string, []byte) {
		return "GET", srv.URL, nil
	})
	// Requests cut off by the deadline reached the server but do not count.
	if res.Requests == 0 || int64(res.Requests) > n.Load() || n.Load() > int64(res.Requests+4) {
		t.Fatalf("Requests = %d, server saw %d", res.Requests, n.Load())
	}
	if want := res.Requests / 4; res.Errors < want-1 || res.Errors > want+1 {
		t.Fatalf("Errors = %d, want about %d", res.Errors, want)
	}
	if !(res.Percentile(50) <= res.Percentile(99) && res.Percentile(99) <= res.Percentile(100)) || res.Percentile(100) == 0 {
		t.Fatalf("percentiles out of order: %v %v %v", res.Percentile(50), res.Percentile(99), res.Percentile(100))
	}
}

func TestPercentileOfKnownSample(t *testing.T) {
	r := Result{}
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	if r.Percentile(50) != 50*time.Millisecond || r.Percentile(99) != 99*time.Millisecond {
		t.Fatalf("p50=%v p99=%v", r.Percentile(50), r.Percentile(99))
	}
}

func TestMergePoolsRounds(t *testing.T) {
	a := Result{Requests: 2, Errors: 1, Duration: time.Second, latencies: []time.Duration{3, 1}}
	b := Result{Requests: 1, Duration: time.Second, latencies: []time.Duration{2}}
	m := Result{}.Merge(a).Merge(b)
	if m.Requests != 3 || m.Errors != 1 || m.Duration != 2*time.Second || m.RPS() != 1.5 {
		t.Fatalf("merged = %+v", m)
	}
	if m.Percentile(100) != 3 || m.Percentile(34) != 1 || m.Percentile(67) != 2 {
		t.Fatalf("merged latencies not pooled and sorted: %v", m.latencies)
	}
}

func TestEmptyMethodEndsTheWorker(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()
	res := Run(context.Background(), 3, time.Minute, func(w, i int) (string, string, []byte) {
		if i >= 5 {
			return "", "", nil
		}
		return "GET", srv.URL, nil
	})
	if res.Requests != 15 || n.Load() != 15 || res.Errors != 0 {
		t.Fatalf("Requests = %d, server saw %d, errors %d; want 15 each and no errors", res.Requests, n.Load(), res.Errors)
	}
}
