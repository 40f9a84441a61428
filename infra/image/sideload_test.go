package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The import script runs here against stand-in sudo and microk8s that log
// their calls: the archive is imported, the image pinned (so the kubelet's
// image GC never deletes it), checked, and the archive removed.
func TestImportPinsTheImage(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the script checks the host's architecture")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	b := &Built{Arch: runtime.GOARCH, Digest: "sha256:" + strings.Repeat("ab", 32)}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("sudo", `[ "$1" = -n ] && shift; exec "$@"`+"\n")
	write("microk8s", `echo "$*" >> `+log+"\n"+`[ "$*" = "ctr image ls -q" ] && echo '`+b.LocalRef()+"'\nexit 0\n")
	archive := filepath.Join(dir, "image.oci.tar")
	if err := os.WriteFile(archive, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", ImportScript(b, archive))
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	calls, _ := os.ReadFile(log)
	want := "ctr image import --base-name " + LocalName + " --digests " + archive + "\n" +
		"ctr image label " + b.LocalRef() + " " + PinnedLabel + "\n" +
		"ctr image ls -q\n"
	if string(calls) != want {
		t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Error("the archive was not removed")
	}
}
