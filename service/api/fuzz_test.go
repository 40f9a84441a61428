package api

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"microk8s-platform/service/store"
)

// FuzzDecodeNewComment feeds arbitrary bodies to the decoder and to the whole
// handler: the decoder either accepts a comment that satisfies every rule or
// returns a 4xx InputError, and the handler never answers 5xx or panics.
func FuzzDecodeNewComment(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","comment":"hi","content_id":1}`,
		`{"email":"a@example.com","comment":"hi","content_id":"x-1"}`,
		`{"email":"a@example.com","comment":"hi","content_id":1.5e3}`,
		`{"email":"Alice <a@example.com>","comment":"hi","content_id":1}`,
		`{"email":"a@example.com","comment":"","content_id":null}`,
		`{"email":"a@example.com","comment":"\u0000","content_id":"\ud800"}`,
		`{"email":["a"],"comment":{},"content_id":[]}`,
		`{} {}`, `null`, `[]`, `"str"`, `{`, ``, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	_, h := newTestAPI(store.NewMemory())
	f.Fuzz(func(t *testing.T, body []byte) {
		nc, err := DecodeNewComment(body)
		if err != nil {
			var in *InputError
			if !errors.As(err, &in) || in.Status < 400 || in.Status > 499 {
				t.Fatalf("error %v is not a 4xx InputError", err)
			}
		} else {
			if ValidateEmail(nc.Email) != nil || ValidateContentID(nc.ContentID) != nil ||
				strings.TrimSpace(nc.Comment) == "" || utf8.RuneCountInString(nc.Comment) > MaxCommentLen {
				t.Fatalf("accepted an invalid comment: %+v", nc)
			}
		}

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/comment/new", strings.NewReader(string(body))))
		if rec.Code >= 500 {
			t.Fatalf("status %d for body %q", rec.Code, body)
		}
		if (err == nil) != (rec.Code == 200) {
			t.Fatalf("decoder said %v but handler answered %d", err, rec.Code)
		}
		var st Status
		if json.Unmarshal(rec.Body.Bytes(), &st) != nil || st.Status == "" {
			t.Fatalf("answer %q is not a JSON status", rec.Body.String())
		}
	})
}

// jsonString's shortcut must agree with encoding/json on every value.
func FuzzJSONStringAgreesWithEncodingJSON(f *testing.F) {
	for _, seed := range []string{`"a"`, `""`, `"a\"b"`, `"\u00e9"`, `"é"`, `" x "`, `"a` + "\t" + `b"`, `1`, `"`, `"\\"`, ` "a" `} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if !utf8.ValidString(v) {
			return // the body was checked before
		}
		got, gotErr := jsonString(json.RawMessage(v))
		var want string
		wantErr := json.Unmarshal([]byte(v), &want)
		if (gotErr == nil) != (wantErr == nil) || got != want {
			t.Fatalf("jsonString(%q) = %q, %v; encoding/json: %q, %v", v, got, gotErr, want, wantErr)
		}
	})
}
