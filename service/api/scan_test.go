package api

import (
	"fmt"
	"reflect"
	"testing"
)

// Bodies the scan must take, so the common POST really skips the decoder.
var flatBodies = []string{
	`{"email":"a@example.com","comment":"hi","content_id":1}`,
	` { "email" : "a@example.com" , "comment" : "caf\u00e9 \"quoted\"" , "content_id" : "x-1" } `,
	`{"content_id":-1.5e+3,"email":"a@example.com","comment":"x","extra":"ignored"}`,
	`{"email":"a@example.com","email":"b@example.com","comment":"last wins","content_id":0}`,
	`{}`,
}

// Bodies it must leave to encoding/json: whatever is not a flat object of
// strings and numbers with plain keys, and everything malformed.
var notFlatBodies = []string{
	`{"email":null}`, `{"e\u006dail":"a@example.com"}`, `{"n":01}`, `{"n":1.}`, `{"n":-}`, `{"n":1e}`,
	`{"s":"\x"}`, `{"s":"\u12"}`, "{\"s\":\"tab\there\"}", `{"a":"b"} x`, `{"a":"b",}`, `{"a" "b"}`,
	`[]`, `null`, ``, `{`, `{"a":{"b":1}}`, `{"a":[1]}`, `{"a":true}`,
}

func TestScanTakesFlatObjectsAndLeavesTheRest(t *testing.T) {
	for _, b := range flatBodies {
		if _, ok := scanFlatObject([]byte(b)); !ok {
			t.Errorf("scan gave up on %s", b)
		}
	}
	for _, b := range notFlatBodies {
		if _, ok := scanFlatObject([]byte(b)); ok {
			t.Errorf("scan took %s", b)
		}
	}
}

func TestScanAllocatesNothing(t *testing.T) {
	body := []byte(flatBodies[1])
	if n := testing.AllocsPerRun(100, func() { _, _ = scanFlatObject(body) }); n != 0 {
		t.Errorf("%v allocations per scan", n)
	}
}

// outcome is what a decode produced, in comparable form.
func outcome(nc NewComment, err error) string { return fmt.Sprintf("%#v %v", nc, err) }

func TestScanAgreesWithDecoder(t *testing.T) {
	for _, b := range append(append([]string{}, flatBodies...), notFlatBodies...) {
		got, want := outcome(decodeNewComment([]byte(b), true)), outcome(decodeNewComment([]byte(b), false))
		if got != want {
			t.Errorf("%s:\nscan    %s\ndecoder %s", b, got, want)
		}
	}
}

// FuzzScanAgreesWithDecoder searches for a body on which the scan's answer
// (value, or error and its message) differs from encoding/json's.
func FuzzScanAgreesWithDecoder(f *testing.F) {
	for _, b := range append(append([]string{}, flatBodies...), notFlatBodies...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		gotNC, gotErr := decodeNewComment(body, true)
		wantNC, wantErr := decodeNewComment(body, false)
		if !reflect.DeepEqual(gotNC, wantNC) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("%q:\nscan    %s\ndecoder %s", body, outcome(gotNC, gotErr), outcome(wantNC, wantErr))
		}
	})
}
