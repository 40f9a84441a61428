package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"time"
)

// The access log writes one line per request. Through log/slog that line
// was the largest single cost of a request after the system calls (about a
// tenth of the CPU in issue 22's profile: a Record, its attributes boxed,
// the handler's generic walk). When the logger is LogHandler over a
// JSONHandler writing to LogHandler.Access, the line is written here
// instead, byte for byte what slog would have written
// (TestAccessLineIsSlogsLine); any other logger goes through slog.

// accessEntry is one request's line.
type accessEntry struct {
	level         slog.Level
	method, path  string
	route         string
	status, bytes int
	durationMS    float64
	remote, reqID string
	at            time.Time // when the request ended: the line's time
}

// logRequest writes the access log line for one request.
func (a *API) logRequest(ctx context.Context, e accessEntry) {
	if a.access == nil {
		a.log.Log(ctx, e.level, "request",
			"method", e.method, "path", e.path, "route", e.route,
			"status", e.status, "bytes", e.bytes,
			"duration_ms", e.durationMS,
			"remote", e.remote)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := appendAccessLine((*bp)[:0], e.at, e)
	_, _ = a.access.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// accessWriter is where the access log may be written directly: the
// Access writer of a LogHandler carrying no attributes or groups.
func accessWriter(log *slog.Logger) io.Writer {
	if h, ok := log.Handler().(LogHandler); ok {
		return h.Access
	}
	return nil
}

// appendAccessLine is JSONHandler's line for
// log.Log(ctx, level, "request", "method", ..., "remote", ...) through
// LogHandler, which adds request_id last.
func appendAccessLine(b []byte, t time.Time, e accessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = t.Round(0).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendLogString(b, e.level.String())
	b = append(b, `,"msg":"request","method":`...)
	b = appendLogString(b, e.method)
	b = append(b, `,"path":`...)
	b = appendLogString(b, e.path)
	b = append(b, `,"route":`...)
	b = appendLogString(b, e.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(e.bytes), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, e.durationMS)
	b = append(b, `,"remote":`...)
	b = appendLogString(b, e.remote)
	if e.reqID != "" {
		b = append(b, `,"request_id":`...)
		b = appendLogString(b, e.reqID)
	}
	return append(b, "}\n"...)
}

// appendJSONFloat writes f as json.Marshal does, which is what slog calls
// for floats: the 'f' format between 1e-6 and 1e21 (every duration), else
// json.Marshal itself.
func appendJSONFloat(b []byte, f float64) []byte {
	if abs := math.Abs(f); abs == 0 || abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	j, err := json.Marshal(f)
	if err != nil { // NaN or an infinity: slog writes the error instead
		return append(b, `"!ERROR:`+err.Error()+`"`...)
	}
	return append(b, j...)
}
