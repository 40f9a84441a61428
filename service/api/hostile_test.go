package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

// Input PostgreSQL cannot store is refused with a 400 on every store, so
// the stores agree: PostgreSQL rejects NUL in text ("invalid byte sequence
// for encoding UTF8: 0x00", SQLSTATE 22021; PostgreSQL docs, "Character
// Types": the character with code zero cannot be stored), and
// encoding/json would quietly replace invalid UTF-8 with U+FFFD.
func TestUnstorableInputIs400(t *testing.T) {
	cases := []struct {
		name, body, field, contains string
	}{
		{"NUL in comment", `{"email":"a@example.com","comment":"a\u0000b","content_id":1}`, "comment", "NUL"},
		{"NUL in email", `{"email":"a\u0000@example.com","comment":"x","content_id":1}`, "email", "NUL"},
		{"NUL in content_id", `{"email":"a@example.com","comment":"x","content_id":"a\u0000"}`, "content_id", "control"},
		{"invalid UTF-8 in comment", "{\"email\":\"a@example.com\",\"comment\":\"\xff\xfe\",\"content_id\":1}", "", "UTF-8"},
	}
	s := store.NewMemory()
	_, h := newTestAPI(s)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := do(t, h, "POST", "/api/comment/new", c.body)
			if res.code != 400 {
				t.Fatalf("code = %d (%s), want 400", res.code, res.body)
			}
			got := decodeStatus(t, res.body)
			if got.Status != "BAD-REQUEST" || got.Field != c.field || !strings.Contains(got.Message, c.contains) {
				t.Fatalf("body = %+v, want field %q and a message about %s", got, c.field, c.contains)
			}
		})
	}
	if got, _ := s.List(context.Background(), "1"); len(got) != 0 {
		t.Fatalf("refused input was stored: %v", got)
	}
}

// Every id that can be written can be listed through the router, which
// cleans paths (so "." and ".." can never be listed: they are refused).
func TestEveryWritableIDIsListable(t *testing.T) {
	_, h := newTestAPI(store.NewMemory())
	for _, id := range []string{".", ".."} {
		res := do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"x","content_id":"`+id+`"}`)
		if res.code != 400 || decodeStatus(t, res.body).Field != "content_id" {
			t.Errorf("content_id %q: %d %s, want 400", id, res.code, res.body)
		}
	}
	for _, id := range []string{"...", ".a", "a.", "a..b", "%2E", "%2e%2e", "?", "#", "a b", " x", "ü", "🚀", `\`, "a;b", "%", "+", "*", "~", "-1", "1e3", strings.Repeat(".", MaxContentIDLen)} {
		checkListable(t, h, id)
	}
}

func checkListable(t *testing.T, h http.Handler, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": "a@example.com", "comment": "for " + id, "content_id": id})
	var sent map[string]string // what the client really sent (json.Marshal fixes invalid UTF-8)
	_ = json.Unmarshal(body, &sent)
	id = sent["content_id"]
	res := do(t, h, "POST", "/api/comment/new", string(body))
	if res.code != 200 {
		if res.code == 400 || res.code == 413 {
			return // refused: nothing to list
		}
		t.Fatalf("POST content_id %q = %d %s", id, res.code, res.body)
	}
	res = do(t, h, "GET", "/api/comment/list/"+url.PathEscape(id), "")
	if res.code != 200 || !strings.Contains(res.body, `"for `) {
		t.Fatalf("content_id %q was written but GET /api/comment/list/%s = %d %s", id, url.PathEscape(id), res.code, res.body)
	}
}

func FuzzEveryWritableIDIsListable(f *testing.F) {
	for _, seed := range []string{"1", ".", "..", "./", "a/..", "%2F", "\x00", "\xff", "\u2028", "a\tb"} {
		f.Add(seed)
	}
	_, h := newTestAPI(store.NewMemory())
	f.Fuzz(func(t *testing.T, id string) { checkListable(t, h, id) })
}

// A Content-Length over the limit is answered from the header at once,
// without waiting for the body (which may never come), and the connection
// is not kept.
func TestOversizeContentLengthIs413AtOnce(t *testing.T) {
	srv := httptest.NewServer(New(store.NewMemory(), metrics.New(), slog.New(slog.NewJSONHandler(io.Discard, nil))).Handler())
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/comment/new HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{}", MaxBodyBytes+1)
	// A guard against a hang, not a timing assertion: before the fix
	// the server waited for the rest of the body until ReadTimeout (30s).
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to an oversize Content-Length: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !resp.Close || decodeStatus(t, string(b)).Status != "TOO-LARGE" {
		t.Fatalf("got %d close=%v %s, want 413 TOO-LARGE and Connection: close", resp.StatusCode, resp.Close, b)
	}
}

// A store past its deadline is a 503 in the JSON error shape that says so.
func TestStoreTimeoutIs503JSON(t *testing.T) {
	h := New(timeoutStore{store.NewMemory()}, metrics.New(), slog.New(slog.NewJSONHandler(io.Discard, nil))).Handler()
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/comment/new", `{"email":"a@example.com","comment":"x","content_id":1}`},
		{"GET", "/api/comment/list/1", ""},
	} {
		res := do(t, h, r.method, r.path, r.body)
		got := decodeStatus(t, res.body)
		if res.code != 503 || got.Status != "UNAVAILABLE" || !strings.Contains(got.Message, "did not answer within 2s") || res.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with the store past its deadline = %d %+v", r.method, r.path, res.code, got)
		}
	}
}

type timeoutStore struct{ store.Store }

func (timeoutStore) Add(context.Context, string, store.Comment) error {
	return &store.TimeoutError{Op: "add", Limit: 2 * time.Second}
}

func (timeoutStore) List(context.Context, string) ([]store.Comment, error) {
	return nil, &store.TimeoutError{Op: "list", Limit: 2 * time.Second}
}
