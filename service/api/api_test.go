package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

func newTestAPI(s store.Store) (*API, http.Handler) {
	a := New(s, metrics.New(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	return a, a.Handler()
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func decodeStatus(t *testing.T, body string) Status {
	t.Helper()
	var s Status
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("body %q is not a JSON status: %v", body, err)
	}
	return s
}

func TestCreateAndListKeepFlaskContract(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	res := do(t, h, "POST", "/api/comment/new", `{"email":"alice@example.com","comment":"first post","content_id":1}`, "Content-Type", "application/json")
	if res.code != 200 {
		t.Fatalf("POST = %d %s", res.code, res.body)
	}
	if got := decodeStatus(t, res.body); got != (Status{Status: "SUCCESS", Message: "comment created and associated with content_id 1"}) {
		t.Fatalf("POST body = %+v", got)
	}
	// A string id "1" is the same content as the number 1.
	do(t, h, "POST", "/api/comment/new", `{"email":"bob@example.com","comment":"second","content_id":"1"}`)

	res = do(t, h, "GET", "/api/comment/list/1", "")
	if res.code != 200 || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET = %d %s %s", res.code, res.header.Get("Content-Type"), res.body)
	}
	var list []map[string]string
	if err := json.Unmarshal([]byte(res.body), &list); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"email": "alice@example.com", "comment": "first post"}, {"email": "bob@example.com", "comment": "second"}}
	if len(list) != 2 || list[0]["email"] != want[0]["email"] || list[1]["comment"] != want[1]["comment"] || len(list[0]) != 2 {
		t.Fatalf("list = %v, want %v", list, want)
	}
}

func TestListUnknownContentIsFlask404(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	res := do(t, h, "GET", "/api/comment/list/42", "")
	if res.code != 404 {
		t.Fatalf("code = %d", res.code)
	}
	if got := decodeStatus(t, res.body); got != (Status{Status: "NOT-FOUND", Message: "content_id 42 not found"}) {
		t.Fatalf("body = %+v", got)
	}
}

func TestNumericContentIDKeepsItsSpelling(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	for _, id := range []string{`7`, `-3`, `2.5`, `1e3`} {
		res := do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"x","content_id":`+id+`}`)
		if res.code != 200 || !strings.HasSuffix(decodeStatus(t, res.body).Message, "content_id "+id) {
			t.Fatalf("content_id %s: %d %s", id, res.code, res.body)
		}
		if res := do(t, h, "GET", "/api/comment/list/"+id, ""); res.code != 200 {
			t.Fatalf("list %s = %d", id, res.code)
		}
	}
}

func TestBadInputGetsJSON4xx(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name, body string
		code       int
		field      string
		contains   string
	}{
		{"empty body", ``, 400, "", "empty body"},
		{"malformed", `{"email":`, 400, "", "truncated"},
		{"syntax", `{"email" "x"}`, 400, "", "invalid character"},
		{"array", `[1,2]`, 400, "", "not a JSON object"},
		{"null", `null`, 400, "", "null"},
		{"trailing data", `{"email":"a@example.com","comment":"x","content_id":1} {}`, 400, "", "after the JSON object"},
		{"missing email", `{"comment":"x","content_id":1}`, 400, "email", "required"},
		{"missing comment", `{"email":"a@example.com","content_id":1}`, 400, "comment", "required"},
		{"missing content_id", `{"email":"a@example.com","comment":"x"}`, 400, "content_id", "required"},
		{"empty email", `{"email":"","comment":"x","content_id":1}`, 400, "email", "empty"},
		{"blank comment", `{"email":"a@example.com","comment":"   ","content_id":1}`, 400, "comment", "empty"},
		{"empty content_id", `{"email":"a@example.com","comment":"x","content_id":""}`, 400, "content_id", "empty"},
		{"email number", `{"email":5,"comment":"x","content_id":1}`, 400, "email", "got number"},
		{"comment object", `{"email":"a@example.com","comment":{},"content_id":1}`, 400, "comment", "got object"},
		{"content_id bool", `{"email":"a@example.com","comment":"x","content_id":true}`, 400, "content_id", "got boolean"},
		{"content_id null", `{"email":"a@example.com","comment":"x","content_id":null}`, 400, "content_id", "got null"},
		{"content_id array", `{"email":"a@example.com","comment":"x","content_id":[1]}`, 400, "content_id", "got array"},
		{"not an email", `{"email":"not-an-address","comment":"x","content_id":1}`, 400, "email", "not an e-mail"},
		{"display name email", `{"email":"Alice <a@example.com>","comment":"x","content_id":1}`, 400, "email", "not an e-mail"},
		{"long email", `{"email":"` + long(250) + `@example.com","comment":"x","content_id":1}`, 400, "email", "limit is 254"},
		{"long comment", `{"email":"a@example.com","comment":"` + long(MaxCommentLen+1) + `","content_id":1}`, 400, "comment", "limit is 2000"},
		{"long content_id", `{"email":"a@example.com","comment":"x","content_id":"` + long(MaxContentIDLen+1) + `"}`, 400, "content_id", "limit is 128"},
		{"slash in content_id", `{"email":"a@example.com","comment":"x","content_id":"a/b"}`, 400, "content_id", `"/"`},
		{"control in content_id", `{"email":"a@example.com","comment":"x","content_id":"a\u0000b"}`, 400, "content_id", "control"},
		{"too large", `{"email":"a@example.com","comment":"` + long(MaxBodyBytes) + `","content_id":1}`, 413, "", "limit of 16384"},
	}
	s := store.NewMemory()
	_, h := newTestAPI(s)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, h, "POST", "/api/comment/new", c.body)
			if res.code != c.code {
				t.Fatalf("code = %d, want %d (%s)", res.code, c.code, res.body)
			}
			got := decodeStatus(t, res.body)
			if got.Field != c.field || !strings.Contains(got.Message, c.contains) {
				t.Fatalf("body = %+v, want field %q and message containing %q", got, c.field, c.contains)
			}
		})
	}
	// A comment of exactly the limit (in characters, not bytes) is fine.
	ok := `{"email":"a@example.com","comment":"` + strings.Repeat("é", MaxCommentLen) + `","content_id":1}`
	if res := do(t, h, "POST", "/api/comment/new", ok); res.code != 200 {
		t.Fatalf("comment at the limit: %d %s", res.code, res.body)
	}
	if got, _ := s.List(context.Background(), "1"); len(got) != 1 {
		t.Fatalf("rejected requests stored something: %d comments", len(got))
	}
}

func TestWrongContentTypeIs415(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	res := do(t, h, "POST", "/api/comment/new", `email=a`, "Content-Type", "application/x-www-form-urlencoded")
	if res.code != 415 || decodeStatus(t, res.body).Status != "UNSUPPORTED-MEDIA-TYPE" {
		t.Fatalf("got %d %s", res.code, res.body)
	}
	res = do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"x","content_id":1}`, "Content-Type", "application/json; charset=utf-8")
	if res.code != 200 {
		t.Fatalf("json with charset: %d %s", res.code, res.body)
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	for _, c := range []struct{ method, path, allow string }{
		{"GET", "/api/comment/new", "POST"},
		{"PUT", "/api/comment/new", "POST"},
		{"POST", "/api/comment/list/1", "GET, HEAD"},
		{"DELETE", "/healthz", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
	} {
		res := do(t, h, c.method, c.path, "")
		if res.code != 405 || res.header.Get("Allow") != c.allow || decodeStatus(t, res.body).Status != "METHOD-NOT-ALLOWED" {
			t.Errorf("%s %s = %d Allow=%q %s", c.method, c.path, res.code, res.header.Get("Allow"), res.body)
		}
	}
}

func TestUnknownRouteIsJSON404(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	for _, p := range []string{"/", "/api", "/api/comment/list/", "/api/comment/list/a/b", "/nope"} {
		res := do(t, h, "GET", p, "")
		if res.code != 404 || decodeStatus(t, res.body).Status != "NOT-FOUND" {
			t.Errorf("GET %s = %d %s", p, res.code, res.body)
		}
	}
}

func TestListRejectsBadIDInPath(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	res := do(t, h, "GET", "/api/comment/list/"+strings.Repeat("9", MaxContentIDLen+1), "")
	if res.code != 400 || decodeStatus(t, res.body).Field != "content_id" {
		t.Fatalf("got %d %s", res.code, res.body)
	}
}

func TestHealthProbes(t *testing.T) {
	a, h := newTestAPI(store.NewMemory())
	for _, p := range []string{"/health", "/healthz", "/readyz"} {
		if res := do(t, h, "GET", p, ""); res.code != 200 {
			t.Errorf("GET %s = %d", p, res.code)
		}
	}
	if res := do(t, h, "HEAD", "/healthz", ""); res.code != 200 {
		t.Errorf("HEAD /healthz = %d", res.code)
	}
	a.Drain()
	if res := do(t, h, "GET", "/readyz", ""); res.code != 503 || decodeStatus(t, res.body).Status != "DRAINING" {
		t.Errorf("readyz while draining = %d %s", res.code, res.body)
	}
	// Liveness does not depend on draining or on the store.
	if res := do(t, h, "GET", "/healthz", ""); res.code != 200 {
		t.Errorf("healthz while draining = %d", res.code)
	}
}

// failingStore fails every call, as a PostgreSQL that went away would.
type failingStore struct{ store.Store }

var errDown = errors.New("connection refused")

func (failingStore) Add(context.Context, string, store.Comment) error      { return errDown }
func (failingStore) List(context.Context, string) ([]store.Comment, error) { return nil, errDown }
func (failingStore) Ping(context.Context) error                            { return errDown }

func TestStoreFailureIs503AndCounted(t *testing.T) {
	m := metrics.New()
	a := New(failingStore{}, m, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	h := a.Handler()
	if res := do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"x","content_id":1}`); res.code != 503 {
		t.Errorf("POST with store down = %d", res.code)
	}
	if res := do(t, h, "GET", "/api/comment/list/1", ""); res.code != 503 {
		t.Errorf("GET with store down = %d", res.code)
	}
	if res := do(t, h, "GET", "/readyz", ""); res.code != 503 {
		t.Errorf("readyz with store down = %d", res.code)
	}
	res := do(t, h, "GET", "/metrics", "")
	for _, want := range []string{`comments_store_errors_total{operation="add"} 1`, `comments_store_errors_total{operation="list"} 1`, `comments_store_errors_total{operation="ping"} 1`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(res.body, errDown.Error()) {
		t.Error("metrics leak error text")
	}
}

func TestMetricsLabelRoutesByPattern(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	do(t, h, "GET", "/api/comment/list/123", "")
	do(t, h, "GET", "/api/comment/list/456", "")
	do(t, h, "BREW", "/nope", "")
	res := do(t, h, "GET", "/metrics", "")
	for _, want := range []string{
		`comments_http_requests_total{code="404",method="GET",route="GET /api/comment/list/{content_id}"} 2`,
		`comments_http_requests_total{code="404",method="OTHER",route="unmatched"} 1`,
	} {
		if !strings.Contains(res.body, want) {
			t.Errorf("metrics lack %s\n%s", want, res.body)
		}
	}
	if strings.Contains(res.body, "123") && strings.Contains(res.body, `route="GET /api/comment/list/123"`) {
		t.Error("a content id leaked into a label")
	}
}

func TestRequestIDIsEchoedOrMinted(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	if got := do(t, h, "GET", "/healthz", "", RequestIDHeader, "abc-123").header.Get(RequestIDHeader); got != "abc-123" {
		t.Errorf("sane id not echoed: %q", got)
	}
	got := do(t, h, "GET", "/healthz", "", RequestIDHeader, "bad id\n<script>").header.Get(RequestIDHeader)
	if got == "" || strings.ContainsAny(got, " <\n") {
		t.Errorf("insane id not replaced: %q", got)
	}
}

func TestLogsCarryRequestID(t *testing.T) {
	var buf strings.Builder
	log := slog.New(LogHandler{Handler: slog.NewJSONHandler(&buf, nil)})
	h := New(store.NewMemory(), metrics.New(), log).Handler()
	do(t, h, "GET", "/api/comment/list/1", "", RequestIDHeader, "trace-me")
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &rec); err != nil {
		t.Fatalf("log line is not JSON: %q", buf.String())
	}
	if rec["request_id"] != "trace-me" || rec["status"] != float64(404) || rec["route"] != "GET /api/comment/list/{content_id}" {
		t.Fatalf("log record = %v", rec)
	}
}

type panicStore struct{ store.Store }

func (panicStore) List(context.Context, string) ([]store.Comment, error) { panic("boom") }

func TestPanicIsRecoveredAsJSON500(t *testing.T) {
	_, h := newTestAPI(panicStore{store.NewMemory()})
	res := do(t, h, "GET", "/api/comment/list/1", "")
	if res.code != 500 || decodeStatus(t, res.body).Status != "ERROR" {
		t.Fatalf("got %d %s", res.code, res.body)
	}
}

// The log is buffered; a warning or an error is flushed at once.
func TestWarningsAndErrorsFlushTheLog(t *testing.T) {
	flushes := 0
	log := slog.New(LogHandler{Handler: slog.NewJSONHandler(io.Discard, nil), Flush: func() error { flushes++; return nil }})
	log.Info("request")
	log.Debug("probe")
	if flushes != 0 {
		t.Errorf("info flushed the log (%d)", flushes)
	}
	log.With("k", "v").Warn("store slow")
	log.WithGroup("g").Error("store failed")
	if flushes != 2 {
		t.Errorf("%d flushes after a warning and an error, want 2", flushes)
	}
}
