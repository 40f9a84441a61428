package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

var timeField = regexp.MustCompile(`^\{"time":"([^"]*)",`)

// The hand-written access line is the line slog wrote for the same
// request, byte for byte (the time aside, which each takes itself).
func TestAccessLineIsSlogsLine(t *testing.T) {
	for _, s := range awkwardStrings {
		for _, e := range []accessEntry{
			{level: slog.LevelInfo, method: "GET", path: "/api/comment/list/" + s, route: "GET /api/comment/list/{content_id}", status: 200, bytes: 1234, durationMS: 0.123, remote: "127.0.0.1:40000", reqID: "0123456789abcdef"},
			{level: slog.LevelDebug, method: s, path: s, route: s, status: 499, bytes: 0, durationMS: 0, remote: s, reqID: s},
			{level: slog.LevelInfo, method: "POST", path: "/", route: "unmatched", status: 404, durationMS: 15001.5, remote: "[::1]:1"},
		} {
			var buf bytes.Buffer
			a := &API{log: slog.New(LogHandler{Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})}
			ctx := context.Background()
			if e.reqID != "" {
				ctx = context.WithValue(ctx, ctxKey{}, e.reqID)
			}
			a.logRequest(ctx, e) // access is nil: through slog
			want := buf.String()
			m := timeField.FindStringSubmatch(want)
			if m == nil {
				t.Fatalf("slog line has no leading time: %s", want)
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				t.Fatal(err)
			}
			if got := string(appendAccessLine(nil, at, e)); got != want {
				t.Errorf("entry %+v:\n got %s\nwant %s", e, got, want)
			}
		}
	}
}

// Served for real, with Access set, the line goes to that writer, once
// per request, parseable and complete; a logger derived with With has no
// direct writer, and goes through slog.
func TestAccessLogIsWrittenToTheDirectWriter(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(LogHandler{Handler: slog.NewJSONHandler(&out, nil), Access: &out})
	h := New(store.NewMemory(), metrics.New(), log).Handler()
	do(t, h, "GET", "/api/comment/list/1", "", RequestIDHeader, "trace-me")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines: %q", len(lines), out.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"level": "INFO", "msg": "request", "method": "GET", "path": "/api/comment/list/1", "status": 404.0, "request_id": "trace-me"} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, rec[k], v, lines[0])
		}
	}
	if accessWriter(log) == nil || accessWriter(log.With("k", "v")) != nil || accessWriter(log.WithGroup("g")) != nil {
		t.Error("only the LogHandler itself may carry the direct writer")
	}
}
