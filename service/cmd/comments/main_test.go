package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"microk8s-platform/service/internal/pgtest"
)

// The built binary, shared by the tests in this file.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "comments-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "comments")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd  *exec.Cmd
	base string
	logs chan string
}

// start runs the binary and waits until /readyz answers 200.
func start(t *testing.T, env ...string) *proc {
	t.Helper()
	p := launch(t, env...)
	p.waitFor(t, "/readyz", 200, 30*time.Second)
	return p
}

// launch runs the binary and returns at once.
func launch(t *testing.T, env ...string) *proc {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), append([]string{"HOST=127.0.0.1", fmt.Sprintf("PORT=%d", port), "DRAIN_DELAY=0s"}, env...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.logs <- sc.Text()
		}
		close(p.logs)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

// waitFor polls path until it answers code, or fails the test after limit.
func (p *proc) waitFor(t *testing.T, path string, code int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := "no answer"
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + path); err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
			last = resp.Status
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s (last: %s)", path, code, limit, last)
}

func (p *proc) status(t *testing.T, method, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends SIGTERM and returns the exit code and the JSON log lines.
func (p *proc) stop(t *testing.T) (int, []map[string]any) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	// Read the log to its end (the process exiting closes it) before Wait:
	// Wait closes the pipe, and a line still unread would be lost
	// (os/exec, Cmd.StdoutPipe).
	var lines []map[string]any
	for l := range p.logs {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			t.Errorf("log line is not JSON: %q", l)
			continue
		}
		lines = append(lines, rec)
	}
	err := p.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, lines
}

func TestCommentSurvivesRestartWithPostgres(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	url := pg.URL("postgres")

	first := start(t, "DATABASE_URL="+url)
	resp, err := http.Post(first.base+"/api/comment/new", "application/json",
		strings.NewReader(`{"email":"keep@example.com","comment":"still here?","content_id":99}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %v %v", err, resp)
	}
	resp.Body.Close()
	code, logs := first.stop(t)
	if code != 0 {
		t.Fatalf("exit code after SIGTERM = %d", code)
	}
	if !hasLog(logs, "stopped") || !hasLog(logs, "listening") {
		t.Errorf("lifecycle not logged: %v", logs)
	}
	for _, l := range logs {
		if strings.Contains(fmt.Sprint(l), "keep@example.com") {
			t.Errorf("a commenter's e-mail reached the log: %v", l)
		}
	}

	second := start(t, "DATABASE_URL="+url)
	resp, err = http.Get(second.base + "/api/comment/list/99")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `[{"email":"keep@example.com","comment":"still here?"}]` {
		t.Fatalf("after restart: %d %s", resp.StatusCode, body)
	}
	second.stop(t)
}

func TestMemoryStoreIsTheDefault(t *testing.T) {
	p := start(t)
	_, logs := p.stop(t)
	for _, l := range logs {
		if l["msg"] == "listening" && l["store"] == "memory" {
			return
		}
	}
	t.Fatalf("no 'listening' log with store=memory: %v", logs)
}

func TestBadConfigurationExitsNonZero(t *testing.T) {
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "PORT=nope", "HOST=127.0.0.1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `PORT="nope"`) {
		t.Fatalf("PORT=nope: err=%v out=%s", err, out)
	}
	cmd = exec.Command(binary)
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://u:pw@127.0.0.1:1/x?connect_timeout=1", "HOST=127.0.0.1",
		fmt.Sprintf("PORT=%d", freePort(t)), "DATABASE_WAIT=2s", "DRAIN_DELAY=0s")
	begun := time.Now()
	out, err = cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "pw@") || strings.Contains(string(out), ":pw") {
		t.Fatalf("unreachable database: err=%v out=%s", err, out)
	}
	if !strings.Contains(string(out), "giving up on the database") || time.Since(begun) > 20*time.Second {
		t.Fatalf("unreachable database: gave up after %s without saying so: %s", time.Since(begun), out)
	}
}

// After a node restart the service usually starts before PostgreSQL. It must
// not exit (the kubelet would back it off for up to five minutes): it
// listens, /healthz answers 200 (liveness holds), /readyz and the API answer
// 503 (no traffic is routed to it), and once PostgreSQL comes up it becomes
// ready and serves, without a restart.
func TestServiceStartedBeforePostgresServesOnceItIsUp(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	p := launch(t, "DATABASE_URL="+url, "DATABASE_WAIT=2m")
	p.waitFor(t, "/healthz", 200, 10*time.Second)
	time.Sleep(time.Second) // a few failed attempts
	if code := p.status(t, "GET", "/readyz", ""); code != 503 {
		t.Fatalf("/readyz before PostgreSQL = %d, want 503", code)
	}
	if code := p.status(t, "POST", "/api/comment/new", `{"email":"early@example.com","comment":"too soon","content_id":7}`); code != 503 {
		t.Fatalf("POST before PostgreSQL = %d, want 503", code)
	}
	if p.cmd.ProcessState != nil {
		t.Fatal("the service exited while waiting")
	}

	pg, err := pgtest.StartWith(pgtest.Options{Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	up := time.Now()
	// The back-off is capped at 5s, so readiness follows within one pause
	// plus one attempt.
	p.waitFor(t, "/readyz", 200, 15*time.Second)
	t.Logf("ready %s after PostgreSQL started", time.Since(up).Round(10*time.Millisecond))
	if code := p.status(t, "POST", "/api/comment/new", `{"email":"late@example.com","comment":"now","content_id":7}`); code != 200 {
		t.Fatalf("POST after PostgreSQL started = %d", code)
	}
	if code := p.status(t, "GET", "/api/comment/list/7", ""); code != 200 {
		t.Fatalf("list after PostgreSQL started = %d", code)
	}
	code, logs := p.stop(t)
	if code != 0 {
		t.Errorf("exit code = %d", code)
	}
	if !hasLog(logs, "database not ready, retrying") || !hasLog(logs, "database ready") {
		t.Errorf("the wait is not logged: %v", logs)
	}
}

func hasLog(logs []map[string]any, msg string) bool {
	for _, l := range logs {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
