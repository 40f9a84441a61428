// Package image builds the comments service's container image from
// service/ in Go — no Docker daemon, no base image to pull — and ships it:
// as an OCI image-layout tarball that the cluster component copies to the
// VM and imports into MicroK8s's containerd (sideload.go), or pushed to a
// registry with the user's own credentials (Push).
//
// The image is one layer: the service compiled as a static binary
// (CGO off, -trimpath, no VCS stamp, no build id) at /comments, and an
// /etc/passwd and /etc/group naming the non-root user 65532 ("nonroot",
// as in distroless). Its config runs as "65532:65532" — numeric, so the
// kubelet can check runAsNonRoot without reading the image's passwd — with
// no shell and nothing else to run. Every timestamp is the Unix epoch and
// every owner root, so the same source and Go toolchain give the same
// bytes, hence the same digest: an unchanged service is no change to
// `pulumi preview`, a changed one is a new digest and a rollout.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Facts of the image that the Deployment and the tests rely on.
const (
	// Binary is the service's path in the image (the entrypoint).
	Binary = "/comments"
	// UID and GID run the service: distroless's "nonroot".
	UID = 65532
	GID = 65532
	// Port the service listens on (its PORT default is set in the config).
	Port = 8080
	// Package is the service's main package, relative to the service module.
	Package = "./cmd/comments"
	// LocalName is the repository the side-loaded image is named under in
	// containerd: `<LocalName>@sha256:<digest>`. It has a registry host
	// part so that a Docker-style normalisation (the CRI's) leaves it as is;
	// nothing listens there and nothing pulls from it.
	LocalName = "microk8s-platform.local/comments"
)

// Arches the image can be built for (Linux only).
var Arches = []string{"amd64", "arm64"}

// epoch is every timestamp in the image.
var epoch = time.Unix(0, 0).UTC()

// Options say what to build.
type Options struct {
	ServiceDir string // the service module (service/)
	Arch       string // amd64 or arm64
	Go         string // the go command; default "go" from PATH
}

// Built is an image made by Build.
type Built struct {
	Arch   string
	Image  v1.Image
	Digest string // the manifest's digest, sha256:<hex>
	// Size is what a registry stores: manifest, config and the compressed layer.
	Size int64
}

// Build compiles the service for opts.Arch and assembles the image.
func Build(opts Options) (*Built, error) {
	if !validArch(opts.Arch) {
		return nil, fmt.Errorf("image: architecture %q: want one of %s", opts.Arch, strings.Join(Arches, ", "))
	}
	goCmd := opts.Go
	if goCmd == "" {
		goCmd = "go"
	}
	dir, err := filepath.Abs(opts.ServiceDir)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "microk8s-platform-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "comments")
	cmd := exec.Command(goCmd, BuildArgs(bin)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), BuildEnv(opts.Arch)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("image: go build of %s in %s for linux/%s: %v\n%s", Package, dir, opts.Arch, err, out)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return Assemble(binary, opts.Arch)
}

// BuildArgs are the go command's arguments: a static, stripped binary
// whose bytes depend only on the source and the toolchain (no paths, no
// VCS state, no build id).
func BuildArgs(out string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, Package}
}

// BuildEnv is the environment for BuildArgs: static Linux for arch, the
// baseline instruction set (so the builder's own GOAMD64 cannot change the
// bytes), and the service module alone (no go.work).
func BuildEnv(arch string) []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch, "GOAMD64=v1", "GOARM64=v8.0", "GOWORK=off", "GOFLAGS=-mod=readonly"}
}

// Assemble makes the image from the compiled binary.
func Assemble(binary []byte, arch string) (*Built, error) {
	if !validArch(arch) {
		return nil, fmt.Errorf("image: architecture %q: want one of %s", arch, strings.Join(Arches, ", "))
	}
	layerTar, err := rootfs(binary)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: epoch},
		CreatedBy: "microk8s-platform infra/image: go " + strings.Join(BuildArgs("/comments"), " "),
		Comment:   "static binary and passwd/group for uid 65532",
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", arch, v1.Time{Time: epoch}
	if arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", UID, GID),
		Entrypoint:   []string{Binary},
		Env:          []string{fmt.Sprintf("PORT=%d", Port)},
		ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", Port): {}},
		WorkingDir:   "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "comments",
			"org.opencontainers.image.description": "the microk8s-platform comments API, built from service/ by infra/image",
		},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	size, err := storedSize(img)
	if err != nil {
		return nil, err
	}
	return &Built{Arch: arch, Image: img, Digest: d.String(), Size: size}, nil
}

// passwd and group name the non-root user; nothing reads them at run time
// (the config's user is numeric), they make `id`-style tools and logs show
// a name.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group  = "root:x:0:\nnonroot:x:65532:\n"
)

// rootfs is the layer: sorted entries, owned by root, stamped with epoch.
func rootfs(binary []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		body []byte
		dir  bool
	}{
		{name: "comments", mode: 0o555, body: binary},
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o444, body: []byte(group)},
		{name: "etc/passwd", mode: 0o444, body: []byte(passwd)},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if e.name == "home/nonroot/" {
			h.Uid, h.Gid = UID, GID
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func storedSize(img v1.Image) (int64, error) {
	m, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	total := int64(len(m) + len(c))
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func validArch(a string) bool {
	for _, x := range Arches {
		if a == x {
			return true
		}
	}
	return false
}

// LocalRef is how the Deployment names a side-loaded image: by digest.
func (b *Built) LocalRef() string { return LocalName + "@" + b.Digest }

// WriteOCILayout writes the image as a tar of an OCI image layout
// (oci-layout, index.json, blobs/sha256/...), entries sorted and stamped
// with epoch, so the same image is the same bytes — and the same Pulumi
// asset hash. index.json names no reference: `ctr image import --digests
// --base-name <LocalName>` then creates exactly one image,
// <LocalName>@<digest>.
func (b *Built) WriteOCILayout(w io.Writer) error {
	blobs := map[string][]byte{}
	add := func(d v1.Hash, body []byte) { blobs["blobs/"+d.Algorithm+"/"+d.Hex] = body }
	m, err := b.Image.RawManifest()
	if err != nil {
		return err
	}
	md, err := b.Image.Digest()
	if err != nil {
		return err
	}
	add(md, m)
	c, err := b.Image.RawConfigFile()
	if err != nil {
		return err
	}
	cd, err := b.Image.ConfigName()
	if err != nil {
		return err
	}
	add(cd, c)
	layers, err := b.Image.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		add(d, body)
	}
	mt, err := b.Image.MediaType()
	if err != nil {
		return err
	}
	platform := &v1.Platform{OS: "linux", Architecture: b.Arch}
	if b.Arch == "arm64" {
		platform.Variant = "v8"
	}
	index, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{{MediaType: mt, Digest: md, Size: int64(len(m)), Platform: platform}},
	})
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json": index,
	}
	for k, v := range blobs {
		files[k] = v
	}
	names := make([]string, 0, len(files))
	for k := range files {
		names = append(names, k)
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, n := range names {
		body := files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteOCILayoutFile writes WriteOCILayout to path (atomically), unless
// path already holds exactly those bytes, so its modification time — and
// anything watching it — stays put when nothing changed.
func (b *Built) WriteOCILayoutFile(path string) error {
	var buf bytes.Buffer
	if err := b.WriteOCILayout(&buf); err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, buf.Bytes()) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Push uploads the image to repository (e.g. ghcr.io/you/comments) with
// the credentials kc finds (authn.DefaultKeychain: docker login, credential
// helpers), tagged with a name derived from its digest (sha256-<hex>, so
// registries that prune untagged manifests keep it; never a moving tag),
// and returns the reference the cluster should run: repository@digest.
func (b *Built) Push(repository string, kc authn.Keychain, opts ...remote.Option) (string, error) {
	repo, err := name.NewRepository(repository)
	if err != nil {
		return "", fmt.Errorf("image: imageRepository %q: %w", repository, err)
	}
	tag := repo.Tag(strings.Replace(b.Digest, ":", "-", 1))
	opts = append([]remote.Option{remote.WithAuthFromKeychain(kc)}, opts...)
	if err := remote.Write(tag, b.Image, opts...); err != nil {
		return "", fmt.Errorf("image: push to %s: %w", tag, err)
	}
	return repo.Digest(b.Digest).String(), nil
}

// RepoRef is the reference Push returns, without pushing.
func RepoRef(repository, digest string) (string, error) {
	repo, err := name.NewRepository(repository)
	if err != nil {
		return "", fmt.Errorf("image: imageRepository %q: %w", repository, err)
	}
	return repo.Digest(digest).String(), nil
}
