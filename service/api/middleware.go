package api

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

type ctxKey struct{}

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// LogHandler wraps a slog.Handler so every record logged with a request's
// context carries its request_id. Flush, when set, runs after every record
// of level warn and above: the log is buffered (logbuf), and a warning or
// an error must not wait for the next flush. Access, when set, must be the
// writer of Handler, a slog.JSONHandler with no options but Level: the
// access log then writes its lines there itself, in that handler's format
// (accesslog.go). Loggers derived with With or WithGroup do not carry it.
type LogHandler struct {
	slog.Handler
	Flush  func() error
	Access io.Writer
}

func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	err := h.Handler.Handle(ctx, r)
	if h.Flush != nil && r.Level >= slog.LevelWarn {
		if ferr := h.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{Handler: h.Handler.WithAttrs(attrs), Flush: h.Flush}
}

func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{Handler: h.Handler.WithGroup(name), Flush: h.Flush}
}

// instrument adds, around every request: a request id (the caller's, when it
// is sane, else a new one), Connection: close once draining, panic recovery, the in-flight gauge, the request
// counter and latency histogram labelled by route pattern, and an access log.
func (a *API) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header()[RequestIDHeader] = []string{id} // the key is canonical: no Set to normalise it
		if a.draining.Load() {
			// Shutting down: tell the client (Kong) not to reuse this
			// connection, so none is left idle for the listener's close
			// to cut while a request is on its way (see server.Serve).
			w.Header().Set("Connection", "close")
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}

		a.metrics.InFlightInc()
		defer func() {
			a.metrics.InFlightDec()
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				a.log.ErrorContext(r.Context(), "panic serving request", "panic", p)
				if !rec.wrote {
					writeStatus(rec, http.StatusInternalServerError, Status{Status: "ERROR", Message: "internal error"})
				}
			}
			route := routeLabel(r.Pattern)
			end := time.Now() // one clock read for the histogram, the log line's time and its duration
			took := end.Sub(start)
			a.metrics.ObserveRequest(route, methodLabel(r.Method), rec.code, took)
			level := slog.LevelInfo
			if route == "GET /healthz" || route == "GET /readyz" || route == "GET /metrics" {
				level = slog.LevelDebug // probes and scrapes would drown the log
			}
			if !a.log.Enabled(r.Context(), level) {
				return // spare building the record (the benchmark's profile)
			}
			a.logRequest(r.Context(), accessEntry{
				level: level, method: r.Method, path: r.URL.Path, route: route,
				status: rec.code, bytes: rec.bytes,
				durationMS: float64(took.Microseconds()) / 1000, at: end,
				remote: r.RemoteAddr, reqID: id,
			})
		}()
		next.ServeHTTP(rec, r)
	})
}

// routeLabel keeps the metric's route label bounded: the mux pattern, or
// "unmatched" for the catch-all.
func routeLabel(pattern string) string {
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}

// methodLabel bounds the method label to the standard verbs.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// newRequestID is 16 hex digits from the runtime's per-thread generator
// (math/rand/v2): ids only need to be unique enough to find a request's
// lines, not secret, and crypto/rand cost a system call's worth per
// request in the profile.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int
	wrote bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.code, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
