package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"microk8s-platform/service/server"
)

// servePeer serves one of the benchmark's servers on addr.
func servePeer(peer, addr string) error {
	switch peer {
	case "bare":
		return serveHandler(addr, bareHandler())
	case "minimal":
		return serveHandler(addr, minimalHandler())
	case "ours-profiled":
		return serveProfiled(os.Getenv(profileEnv))
	}
	return fmt.Errorf("no peer %q", peer)
}

func serveHandler(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(ln, h)
}

// bareHandler is the ceiling: fixed answers of the same size as the real
// ones, the request body not even read. What is left is what the kernel,
// the loopback and net/http cost.
func bareHandler() http.Handler {
	list := []byte(`[{"email":"r0@example.com","comment":"comment 0"},{"email":"r1000@example.com","comment":"comment 1000"},{"email":"r2000@example.com","comment":"comment 2000"},{"email":"r3000@example.com","comment":"comment 3000"},{"email":"r4000@example.com","comment":"comment 4000"}]` + "\n")
	created := []byte(`{"status":"SUCCESS","message":"comment created and associated with content_id p1"}` + "\n")
	ok := []byte(`{"status":"OK"}` + "\n")
	fixed := func(b []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/comment/new", fixed(created))
	mux.HandleFunc("GET /api/comment/list/{id}", fixed(list))
	mux.HandleFunc("GET /readyz", fixed(ok))
	return mux
}

// minimalHandler is the plainest correct server: the comments API's two
// routes and its readiness probe with the same JSON in and out — decode,
// a mutex and a map, encode — and nothing else: no validation, limits,
// metrics, request ids, logging or deadlines.
func minimalHandler() http.Handler {
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

// profileEnv names the file prefix the profiled service writes to.
const profileEnv = "COMMENTS_BENCH_PROFILE"

// serveProfiled runs the service's own program (server.Run, what
// cmd/comments runs) in this process with the CPU profile on; on SIGINT
// it stops, and writes the CPU profile and the allocation profile.
func serveProfiled(prefix string) error {
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	runErr := server.Run(ctx, os.Getenv, os.Stdout)
	pprof.StopCPUProfile()
	f.Close()
	a, err := os.Create(prefix + ".allocs.pprof")
	if err != nil {
		return err
	}
	defer a.Close()
	if err := pprof.Lookup("allocs").WriteTo(a, 0); err != nil {
		return err
	}
	return runErr
}

// profileOurs serves the service in-process under each scenario's load,
// and writes its profiles and GC trace to dir.
func profileOurs(dir string, dur time.Duration, conns int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, get, post, cleanup, err := prepare()
	if err != nil {
		return err
	}
	defer cleanup()
	for _, sc := range []struct{ name, script string }{{"get", get}, {"post", post}} {
		prefix := filepath.Join(dir, sc.name)
		trace, err := os.Create(prefix + ".gctrace")
		if err != nil {
			return err
		}
		s, err := startServerStderr("ours", []string{peerEnv + "=ours-profiled", profileEnv + "=" + prefix, "LOG_LEVEL=info", "GODEBUG=gctrace=1"}, trace, self)
		if err != nil {
			return err
		}
		if err := seed(s.base); err != nil {
			s.stop()
			return err
		}
		r, err := runWrk(s.base, sc.script, dur, conns)
		s.stop()
		trace.Close()
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(prefix + ".gctrace")
		fmt.Printf("%s: %.0f req/s, %d GCs in %s; %s.cpu.pprof, %s.allocs.pprof, %s.gctrace\n",
			strings.ToUpper(sc.name), r.rps, gcLines(b), dur, prefix, prefix, prefix)
	}
	fmt.Printf("read them with: go tool pprof -top %s/get.cpu.pprof\n", dir)
	return nil
}
