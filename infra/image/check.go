package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// MaxSize bounds the stored (compressed) image: the service alone is a few
// MiB; anything near this means a base image or build tree crept in.
const MaxSize = 30 << 20

// shells are programs whose presence means the image has a shell.
var shells = []string{"bin/sh", "bin/bash", "bin/ash", "bin/dash", "bin/busybox", "usr/bin/sh", "usr/bin/bash", "usr/bin/busybox"}

// Check reports what makes img unfit for the restricted pod the platform
// runs (kube.RestrictedPod: runAsNonRoot, read-only root filesystem, no
// privilege escalation, all capabilities dropped). The image built here
// and the one service/Dockerfile builds must both pass it.
//
//   - the config names a numeric, non-zero user: runAsNonRoot is enforced
//     by the kubelet, which refuses a non-numeric user it cannot verify
//     ("container has runAsNonRoot and image has non-numeric user ...,
//     cannot verify user is non-root": the kubelet's verifyRunAsNonRoot,
//     kubernetes pkg/kubelet/kuberuntime). The platform's pods also set
//     runAsUser 65532, so this matters to anyone running the image alone;
//   - the entrypoint is one absolute path, to a static ELF binary for the
//     config's architecture (no libc, no interpreter);
//   - no shell anywhere;
//   - nothing outside /tmp is world-writable, and no setuid/setgid files;
//   - the compressed image is smaller than MaxSize.
func Check(img v1.Image) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cf, err := img.ConfigFile()
	if err != nil {
		return []error{err}
	}
	if cf.OS != "linux" {
		bad("os %q, want linux", cf.OS)
	}
	user := strings.SplitN(cf.Config.User, ":", 2)[0]
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		bad("config user %q: want a numeric, non-zero uid (runAsNonRoot cannot verify a user name)", cf.Config.User)
	}
	ep := append(append([]string{}, cf.Config.Entrypoint...), cf.Config.Cmd...)
	if len(cf.Config.Entrypoint) != 1 || !path.IsAbs(cf.Config.Entrypoint[0]) {
		bad("entrypoint %q: want one absolute path (no shell form)", cf.Config.Entrypoint)
	}
	if len(ep) > 0 && (strings.HasSuffix(ep[0], "sh") || ep[0] == "sh") {
		bad("entrypoint %q runs a shell", ep)
	}

	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var entry []byte
	found := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return append(errs, err)
		}
		name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		for _, s := range shells {
			if name == s {
				bad("image contains a shell: /%s", name)
			}
		}
		mode := h.FileInfo().Mode()
		if h.Mode&0o6000 != 0 && h.Typeflag == tar.TypeReg {
			bad("/%s is setuid or setgid", name)
		}
		if h.Mode&0o002 != 0 && h.Typeflag != tar.TypeSymlink && name != "tmp" && !strings.HasPrefix(name, "tmp/") {
			bad("/%s is world-writable (%v)", name, mode)
		}
		if len(cf.Config.Entrypoint) == 1 && "/"+name == path.Clean(cf.Config.Entrypoint[0]) && h.Typeflag == tar.TypeReg {
			found = true
			if entry, err = io.ReadAll(tr); err != nil {
				return append(errs, err)
			}
		}
	}
	if !found && len(cf.Config.Entrypoint) == 1 {
		bad("entrypoint %s is not a regular file in the image", cf.Config.Entrypoint[0])
	}
	if found {
		errs = append(errs, checkELF(entry, cf.Architecture)...)
	}
	size, err := storedSize(img)
	if err != nil {
		return append(errs, err)
	}
	if size > MaxSize {
		bad("image is %d bytes compressed, want under %d", size, MaxSize)
	}
	return errs
}

func checkELF(b []byte, arch string) []error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return []error{fmt.Errorf("entrypoint is not an ELF binary: %v", err)}
	}
	defer f.Close()
	var errs []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs = append(errs, errors.New("entrypoint is dynamically linked (has an ELF interpreter)"))
		}
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if want == 0 || f.Machine != want {
		errs = append(errs, fmt.Errorf("entrypoint is built for %v, config says %s", f.Machine, arch))
	}
	return errs
}
