package metrics

import (
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSeriesNamesCoverOwnAndRuntimeMetrics(t *testing.T) {
	names := SeriesNames()
	for _, want := range []string{
		RequestsTotal, RequestDuration + "_bucket", RequestDuration + "_count", RequestDuration + "_sum",
		InFlight, StoreErrors, CommentsCreated,
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("SeriesNames() lacks %s", want)
		}
	}
	if slices.Contains(names, RequestDuration) {
		t.Errorf("a histogram's bare name %s is not a series", RequestDuration)
	}
}

func TestHandlerExposesObservations(t *testing.T) {
	m := New()
	m.ObserveRequest("POST /api/comment/new", "POST", 200, 3*time.Millisecond)
	m.StoreError("add")
	m.CommentCreated()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`comments_http_requests_total{code="200",method="POST",route="POST /api/comment/new"} 1`,
		`comments_store_errors_total{operation="add"} 1`,
		`comments_store_errors_total{operation="ping"} 0`,
		`comments_created_total 1`,
		`comments_http_request_duration_seconds_bucket{route="POST /api/comment/new",le="0.005"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
