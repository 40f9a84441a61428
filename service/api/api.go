// Package api is the comments service's HTTP layer: the Flask-compatible
// comment routes, health and readiness probes, and /metrics, with JSON errors
// for every client mistake (bad input, unknown route, wrong method, oversize
// body) so that nothing a client sends produces a 500 or a panic.
package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"microk8s-platform/service/metrics"
	"microk8s-platform/service/store"
)

// API serves the routes over a Store.
type API struct {
	store    store.Store
	metrics  *metrics.Metrics
	log      *slog.Logger
	access   io.Writer // the access log's direct writer, or nil (accesslog.go)
	draining atomic.Bool
	// readyTimeout bounds the store check behind /readyz.
	readyTimeout time.Duration
}

// New builds the API. The returned value's Handler is ready to serve.
func New(s store.Store, m *metrics.Metrics, log *slog.Logger) *API {
	return &API{store: s, metrics: m, log: log, access: accessWriter(log), readyTimeout: 2 * time.Second}
}

// Drain makes /readyz fail from now on, so load balancers stop sending new
// requests before the server shuts down.
func (a *API) Drain() { a.draining.Store(true) }

// Handler returns the routed, instrumented handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/comment/new", a.createComment)
	mux.HandleFunc("GET /api/comment/list/{content_id}", a.listComments)
	mux.HandleFunc("GET /health", a.health) // the Flask app's probe
	mux.HandleFunc("GET /healthz", a.health)
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", a.metrics.Handler())
	// The same paths without a method: anything that reaches them used the
	// wrong one. (Go's own 405 is plain text; ours is JSON.)
	for path, allow := range map[string]string{
		"/api/comment/new":               "POST",
		"/api/comment/list/{content_id}": "GET, HEAD",
		"/health":                        "GET, HEAD",
		"/healthz":                       "GET, HEAD",
		"/readyz":                        "GET, HEAD",
		"/metrics":                       "GET, HEAD",
	} {
		mux.HandleFunc(path, methodNotAllowed(allow))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, Status{Status: "NOT-FOUND", Message: "no route for " + r.Method + " " + r.URL.Path})
	})
	return a.instrument(mux)
}

// Status is the {"status","message"} body of the Flask app, used for every
// non-list answer; Field names the offending input field on a 400.
type Status struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (a *API) createComment(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		writeStatus(w, http.StatusUnsupportedMediaType, Status{Status: "UNSUPPORTED-MEDIA-TYPE", Message: "Content-Type must be application/json, got " + ct})
		return
	}
	if r.ContentLength > MaxBodyBytes {
		// Answer from the header at once instead of waiting for a body
		// that may never come, and do not keep the connection: the rest
		// of that body would be read as the next request.
		w.Header().Set("Connection", "close")
		writeStatus(w, http.StatusRequestEntityTooLarge, Status{Status: "TOO-LARGE", Message: "body is over the limit of " + strconv.Itoa(MaxBodyBytes) + " bytes (Content-Length " + strconv.FormatInt(r.ContentLength, 10) + ")"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeStatus(w, http.StatusRequestEntityTooLarge, Status{Status: "TOO-LARGE", Message: "body is over the limit of " + strconv.Itoa(MaxBodyBytes) + " bytes"})
			return
		}
		writeStatus(w, http.StatusBadRequest, Status{Status: "BAD-REQUEST", Message: "could not read body: " + err.Error()})
		return
	}
	nc, err := DecodeNewComment(body)
	if err != nil {
		writeInputError(w, err)
		return
	}
	if err := a.store.Add(r.Context(), nc.ContentID, store.Comment{Email: nc.Email, Comment: nc.Comment}); err != nil {
		a.storeFailed(w, r, "add", err)
		return
	}
	a.metrics.CommentCreated()
	writeStatus(w, http.StatusOK, Status{Status: "SUCCESS", Message: "comment created and associated with content_id " + nc.ContentID})
}

func (a *API) listComments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("content_id")
	if err := ValidateContentID(id); err != nil {
		writeInputError(w, err)
		return
	}
	comments, err := a.store.List(r.Context(), id)
	if err != nil {
		a.storeFailed(w, r, "list", err)
		return
	}
	if len(comments) == 0 {
		writeStatus(w, http.StatusNotFound, Status{Status: "NOT-FOUND", Message: "content_id " + id + " not found"})
		return
	}
	writeComments(w, http.StatusOK, comments)
}

func (a *API) health(w http.ResponseWriter, r *http.Request) {
	writeStatus(w, http.StatusOK, Status{Status: "OK", Message: "alive"})
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		writeStatus(w, http.StatusServiceUnavailable, Status{Status: "DRAINING", Message: "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.readyTimeout)
	defer cancel()
	if err := a.store.Ping(ctx); err != nil {
		a.metrics.StoreError("ping")
		a.log.WarnContext(r.Context(), "readiness: store unavailable", "error", err)
		writeStatus(w, http.StatusServiceUnavailable, Status{Status: "UNAVAILABLE", Message: "store unavailable"})
		return
	}
	writeStatus(w, http.StatusOK, Status{Status: "OK", Message: "ready"})
}

// storeFailed answers a failed store call. A client that went away is not a
// server error; anything else, a store past its deadline included, is a 503
// with Retry-After (the store is a dependency that may come back), logged
// with the request id and counted.
func (a *API) storeFailed(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		writeStatus(w, 499, Status{Status: "CANCELLED", Message: "client closed the request"})
		return
	}
	a.metrics.StoreError(op)
	a.log.ErrorContext(r.Context(), "store "+op+" failed", "error", err)
	w.Header().Set("Retry-After", "1")
	var timeout *store.TimeoutError
	if errors.As(err, &timeout) {
		writeStatus(w, http.StatusServiceUnavailable, Status{Status: "UNAVAILABLE", Message: "the comment store did not answer within " + timeout.Limit.String() + ", try again"})
		return
	}
	writeStatus(w, http.StatusServiceUnavailable, Status{Status: "UNAVAILABLE", Message: "the comment store is unavailable, try again"})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeStatus(w, http.StatusMethodNotAllowed, Status{Status: "METHOD-NOT-ALLOWED", Message: r.Method + " is not allowed here; use " + allow})
	}
}

func writeInputError(w http.ResponseWriter, err error) {
	var in *InputError
	if !errors.As(err, &in) {
		in = &InputError{Status: http.StatusBadRequest, Message: err.Error()}
	}
	writeStatus(w, in.Status, Status{Status: "BAD-REQUEST", Message: in.Error(), Field: in.Field})
}

func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
