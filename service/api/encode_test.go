package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"microk8s-platform/service/store"
)

// Strings that exercise every branch of encoding/json's string encoder.
var awkwardStrings = []string{
	"", "plain", `quote " and backslash \`, "tab\tnewline\ncr\rbs\bff\f",
	"\x00\x01\x1f\x7f", "<script>&amp;</script>", "line\u2028para\u2029end",
	"é ü 中文 🙂", "bad \xff utf8 \xc3", "\xed\xa0\x80 surrogate", "'single'", "/slash/",
}

func encodingJSON(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The hand-written bodies are byte for byte what json.Encoder wrote before.
func TestBodiesAreEncodingJSONsBytes(t *testing.T) {
	for _, s := range awkwardStrings {
		for _, st := range []Status{{Status: s, Message: s}, {Status: "BAD-REQUEST", Message: s, Field: s}} {
			if got, want := appendStatus(nil, st), encodingJSON(t, st); !bytes.Equal(got, want) {
				t.Errorf("Status %q:\n got %s\nwant %s", s, got, want)
			}
		}
	}
	lists := [][]store.Comment{nil, {}, {{Email: "a@example.com", Comment: "one"}}}
	var all []store.Comment
	for _, s := range awkwardStrings {
		all = append(all, store.Comment{Email: s, Comment: s})
	}
	for _, cs := range append(lists, all) {
		if got, want := appendComments(nil, cs), encodingJSON(t, cs); !bytes.Equal(got, want) {
			t.Errorf("comments %q:\n got %s\nwant %s", cs, got, want)
		}
	}
}

// What a client receives over a real connection: the headers it always
// got, a Content-Length that is the body's, below net/http's chunking
// threshold (net/http's own) and above it (ours), never chunked; and a
// pooled buffer reused by the next response without leaking its bytes.
func TestResponsesCarryTheirLengthAndNoOldBytes(t *testing.T) {
	s := store.NewMemory()
	_, h := newTestAPI(s)
	srv := httptest.NewServer(h)
	defer srv.Close()
	long := strings.Repeat("x", 1500)
	for _, id := range []string{"one", "two", "two"} {
		if code := do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"`+long+`","content_id":"`+id+`"}`).code; code != 200 {
			t.Fatalf("POST = %d", code)
		}
	}
	for range 3 {
		for path, min := range map[string]int{"/api/comment/list/two": chunkingThreshold, "/api/comment/list/one": 1500, "/healthz": 10} {
			res, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.ContentLength != int64(len(body)) || len(res.TransferEncoding) != 0 || len(body) < min {
				t.Errorf("%s: Content-Length %d, transfer encoding %v, for a %d-byte body", path, res.ContentLength, res.TransferEncoding, len(body))
			}
			if res.Header.Get("Content-Type") != "application/json" || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get(RequestIDHeader) == "" {
				t.Errorf("%s: headers %v", path, res.Header)
			}
			if !json.Valid(body) {
				t.Errorf("%s: body is not one JSON value: %q", path, body)
			}
		}
	}
	// The header is set without Set: its name must already be canonical.
	if textproto.CanonicalMIMEHeaderKey(RequestIDHeader) != RequestIDHeader {
		t.Errorf("%s is not canonical", RequestIDHeader)
	}
}

// FuzzEncodingMatchesJSON searches for a string the hand-written encoder
// writes differently from encoding/json.
func FuzzEncodingMatchesJSON(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		st := Status{Status: a, Message: b, Field: a}
		if got, want := appendStatus(nil, st), encodingJSON(t, st); !bytes.Equal(got, want) {
			t.Fatalf("Status:\n got %s\nwant %s", got, want)
		}
		cs := []store.Comment{{Email: a, Comment: b}, {Email: b, Comment: a}}
		if got, want := appendComments(nil, cs), encodingJSON(t, cs); !bytes.Equal(got, want) {
			t.Fatalf("comments:\n got %s\nwant %s", got, want)
		}
	})
}
