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

func start(t *testing.T, env ...string) *proc {
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
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("service did not become ready in 30s")
	return nil
}

// stop sends SIGTERM and returns the exit code and the JSON log lines.
func (p *proc) stop(t *testing.T) (int, []map[string]any) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	err := p.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	var lines []map[string]any
	for l := range p.logs {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			t.Errorf("log line is not JSON: %q", l)
			continue
		}
		lines = append(lines, rec)
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
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://u:pw@127.0.0.1:1/x?connect_timeout=1", "HOST=127.0.0.1")
	out, err = cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), "pw@") {
		t.Fatalf("unreachable database: err=%v out=%s", err, out)
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
