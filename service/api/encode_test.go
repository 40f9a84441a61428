package api

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
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

// What the handler sends: the headers it always sent, a Content-Length
// that is the body's, and a pooled buffer reused by the next response
// without leaking its bytes into it.
func TestResponsesCarryTheirLengthAndNoOldBytes(t *testing.T) {
	s := store.NewMemory()
	_, h := newTestAPI(s)
	long := string(bytes.Repeat([]byte("x"), 1500))
	if code := do(t, h, "POST", "/api/comment/new", `{"email":"a@example.com","comment":"`+long+`","content_id":"big"}`).code; code != 200 {
		t.Fatalf("POST = %d", code)
	}
	for range 3 {
		for _, path := range []string{"/api/comment/list/big", "/healthz"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			res := rec.Result()
			if got := res.Header.Get("Content-Length"); got != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("%s: Content-Length %s for a %d-byte body", path, got, rec.Body.Len())
			}
			if res.Header.Get("Content-Type") != "application/json" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: headers %v", path, res.Header)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Errorf("%s: body is not one JSON value: %q", path, rec.Body.String())
			}
		}
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
