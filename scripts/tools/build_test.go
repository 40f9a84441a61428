// Package tools tests scripts/tools/build.sh, which builds the sandbox's
// tools from the wrapper modules in the folders here.
package tools

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeGo stands in for go: `go list -deps` downloads two modules and
// lists three packages, `go build -v` compiles them one a second, says
// something that is not a package, and fails when FAKE_GO_FAIL is set.
const fakeGo = `#!/bin/sh
case "$1" in
version) echo "go version go1.26 linux/amd64" ;;
list) echo "go: downloading example.com/a v1.0.0" >&2; sleep 1
      echo "go: downloading example.com/b v1.0.0" >&2
      printf 'example.com/a\nexample.com/b\nexample.com/b/c\n' ;;
build) out=""; prev=""
       for a in "$@"; do [ "$prev" = "-o" ] && out=$a; prev=$a; done
       for p in example.com/a example.com/b example.com/b/c; do echo "$p" >&2; sleep 1; done
       echo "b/c/x.go:1:2: a warning worth seeing" >&2
       [ -n "$FAKE_GO_FAIL" ] && { echo "b/c/x.go:3:4: undefined: y" >&2; exit 1; }
       touch "$out"; chmod +x "$out" ;;
*) echo "fake go: $*" >&2; exit 2 ;;
esac
`

func runBuild(t *testing.T, bin string, env ...string) (string, error) {
	t.Helper()
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "build.sh", "kwok")
	cmd.Env = append(os.Environ(), append([]string{"PATH=" + fake + ":" + os.Getenv("PATH"), "TOOLS_BIN=" + bin, "TOOLS_PROGRESS_EVERY=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A cold build of the Kubernetes provider takes about 21 minutes: the
// build says, while it runs, how many packages of how many are compiled,
// how long it has taken and how long a cold build takes; go's own
// messages get through; a failed build fails and is built again next time.
func TestBuildShowsProgressAndPassesGoMessagesThrough(t *testing.T) {
	bin := t.TempDir()
	out, err := runBuild(t, bin, "FAKE_GO_FAIL=1")
	if err == nil {
		t.Fatalf("a failing go build passed:\n%s", out)
	}
	if !strings.Contains(out, "undefined: y") {
		t.Errorf("the compiler's error is not shown:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(bin, ".kwok.stamp")); err == nil {
		t.Error("a failed build left a stamp: the next run would skip it")
	}

	out, err = runBuild(t, bin)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	progress := regexp.MustCompile(`\[tools\] kwok: [1-3] of up to 3 packages, 0m0[0-9]s so far \(cold, this took about 2 min on the 2-core CI machine\)`)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`\[tools\] kwok: building kwok; cold, this took about 2 min`),
		progress,
		regexp.MustCompile(`b/c/x.go:1:2: a warning worth seeing`),
		regexp.MustCompile(`\[tools\] kwok: 3 packages compiled in 0m0[3-9]s`),
		regexp.MustCompile(`\[tools\] kwok: built in`),
	} {
		if !want.MatchString(out) {
			t.Errorf("the build's output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "example.com/b/c\n") {
		t.Errorf("package names are counted, not printed:\n%s", out)
	}
	out, err = runBuild(t, bin)
	if err != nil || !strings.Contains(out, "kwok: up to date") {
		t.Errorf("second run: %v\n%s", err, out)
	}
}
