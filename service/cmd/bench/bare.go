package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
)

// bareHandler is the yardstick: the comments API's two routes and its
// readiness probe with the same JSON in and out, written the plainest way
// net/http allows — decode, a mutex and a map, encode. The service is
// measured as a fraction of this.
func bareHandler() http.Handler {
	type comment struct {
		Email   string `json:"email"`
		Comment string `json:"comment"`
	}
	var mu sync.Mutex
	comments := map[string][]comment{}
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/comment/new", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Email     string          `json:"email"`
			Comment   string          `json:"comment"`
			ContentID json.RawMessage `json:"content_id"`
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<10))
		if err != nil || json.Unmarshal(body, &in) != nil {
			reply(w, http.StatusBadRequest, map[string]string{"status": "BAD-REQUEST"})
			return
		}
		id := string(bytes.Trim(in.ContentID, `"`))
		mu.Lock()
		comments[id] = append(comments[id], comment{in.Email, in.Comment})
		mu.Unlock()
		reply(w, http.StatusOK, map[string]string{"status": "SUCCESS", "message": "comment created and associated with content_id " + id})
	})
	mux.HandleFunc("GET /api/comment/list/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		mu.Lock()
		list := append([]comment(nil), comments[id]...)
		mu.Unlock()
		if len(list) == 0 {
			reply(w, http.StatusNotFound, map[string]string{"status": "NOT-FOUND", "message": "content_id " + id + " not found"})
			return
		}
		reply(w, http.StatusOK, list)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]string{"status": "OK"})
	})
	return mux
}

func serveBare(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, bareHandler())
}
