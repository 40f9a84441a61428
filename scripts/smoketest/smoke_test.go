package smoketest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"microk8s-platform/internal/commentstest"
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

func smoke(t *testing.T, url string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "smoke.sh"), url)
	cmd.Env = append(os.Environ(), "SMOKE_TRIES=2")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSmokePostsAndReadsBack(t *testing.T) {
	out, err := smoke(t, commentstest.Start(t))
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
