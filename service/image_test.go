package service

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerfileRuntimeIsDistrolessNonRoot(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var lastUser string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "FROM" {
			froms = append(froms, f[1])
			lastUser = ""
		}
		if len(f) >= 2 && f[0] == "USER" {
			lastUser = f[1]
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("runtime image %s is not distroless static nonroot", final)
	}
	for _, f := range froms {
		if !strings.Contains(f, ":") || strings.HasSuffix(f, ":latest") {
			t.Errorf("base image %s is not pinned to a tag", f)
		}
	}
	if lastUser == "" || strings.HasPrefix(lastUser, "0") || strings.HasPrefix(lastUser, "root") {
		t.Errorf("final stage runs as %q, want a numeric non-root user", lastUser)
	}
	if !strings.Contains(string(b), "CGO_ENABLED=0") {
		t.Error("build does not turn CGO off")
	}
}

// Every package directory the binary depends on must survive .dockerignore.
func TestDockerignoreKeepsEveryBuildPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/comments").Output()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	ignore, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		if strings.HasPrefix(l, "!") && strings.HasSuffix(l, "/") {
			allowed[strings.TrimSuffix(l[1:], "/")] = true
		}
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(wd, dir)
		top := strings.Split(rel, string(filepath.Separator))[0]
		if !allowed[top] {
			t.Errorf(".dockerignore drops %s, which cmd/comments needs", rel)
		}
	}
}

// The build command of the Dockerfile yields a static binary, which is what
// the shell-less, libc-less runtime image needs.
func TestBinaryIsStatic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "comments")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./cmd/comments")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has an ELF interpreter: it is dynamically linked")
		}
	}
}
