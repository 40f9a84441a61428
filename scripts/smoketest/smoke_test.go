package smoketest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// service builds and starts the comments service (memory store).
func service(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "comments")
	build := exec.Command("go", "build", "-o", bin, "./cmd/comments")
	build.Dir = filepath.Join("..", "..", "service")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the service: %v\n%s", err, out)
	}
	port := freePort(t)
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
		if i > 100 {
			t.Fatal("service did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base + "/api/comment"
}

func smoke(t *testing.T, url string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "smoke.sh"), url)
	cmd.Env = append(os.Environ(), "SMOKE_TRIES=2")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSmokePostsAndReadsBack(t *testing.T) {
	out, err := smoke(t, service(t))
	if err != nil || !strings.Contains(out, "smoke: OK") || !strings.Contains(out, `"email":"smoke@example.com"`) {
		t.Fatalf("smoke against a working service: %v\n%s", err, out)
	}
}

func TestSmokeFailsWhenNothingAnswers(t *testing.T) {
	out, err := smoke(t, fmt.Sprintf("http://127.0.0.1:%d/api/comment", freePort(t)))
	if err == nil || !strings.Contains(out, "failed 2 times") {
		t.Fatalf("smoke against nothing: %v\n%s", err, out)
	}
}

func TestSmokeRefusesAnOutputThatIsNotAURL(t *testing.T) {
	out, err := smoke(t, "kubectl -n kong port-forward svc/kong-proxy 8080:80")
	if err == nil || !strings.Contains(out, "is not a URL") {
		t.Fatalf("smoke with a non-URL appUrl: %v\n%s", err, out)
	}
}
