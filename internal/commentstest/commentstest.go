// Package commentstest builds the comments service from service/ and runs
// it on 127.0.0.1 with the memory store for the length of a test: what the
// smoke test and the workflow tier post to and read back from.
package commentstest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"microk8s-platform/internal/repo"
)

// Start runs the service and returns its API's URL, as a deploy's appUrl
// output names it (http://127.0.0.1:<port>/api/comment).
func Start(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "comments")
	build := exec.Command("go", "build", "-o", bin, "./cmd/comments")
	build.Dir = filepath.Join(root, "service")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the service: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", fmt.Sprintf("PORT=%d", port), "DATABASE_URL=", "LOG_LEVEL=error", "DRAIN_DELAY=0s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			t.Fatal("the comments service did not start within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base + "/api/comment"
}
