package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"microk8s-platform/internal/repo"
)

var (
	buildOnce sync.Map // arch -> *Built
)

func serviceDir(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "service")
}

func built(t *testing.T, arch string) *Built {
	t.Helper()
	if b, ok := buildOnce.Load(arch); ok {
		return b.(*Built)
	}
	b, err := Build(Options{ServiceDir: serviceDir(t), Arch: arch})
	if err != nil {
		t.Fatal(err)
	}
	buildOnce.Store(arch, b)
	return b
}

// The image of service/ passes the checks a restricted pod needs, for
// both architectures the VMs come in.
func TestBuiltImagePassesCheck(t *testing.T) {
	for _, arch := range Arches {
		t.Run(arch, func(t *testing.T) {
			b := built(t, arch)
			for _, err := range Check(b.Image) {
				t.Error(err)
			}
			cf, _ := b.Image.ConfigFile()
			if cf.Architecture != arch || cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != Binary {
				t.Errorf("config: arch %s user %q entrypoint %v", cf.Architecture, cf.Config.User, cf.Config.Entrypoint)
			}
			t.Logf("linux/%s: %s, %d bytes stored", arch, b.Digest, b.Size)
		})
	}
}

// Check is not a rubber stamp: each unfit image it must refuse.
func TestCheckRefusesUnfitImages(t *testing.T) {
	b := built(t, "amd64")
	cases := map[string]func(*v1.ConfigFile){
		"root user":     func(c *v1.ConfigFile) { c.Config.User = "0:0" },
		"named user":    func(c *v1.ConfigFile) { c.Config.User = "nonroot" },
		"no user":       func(c *v1.ConfigFile) { c.Config.User = "" },
		"shell form":    func(c *v1.ConfigFile) { c.Config.Entrypoint = []string{"/bin/sh", "-c", "/comments"} },
		"missing entry": func(c *v1.ConfigFile) { c.Config.Entrypoint = []string{"/server"} },
		"wrong arch":    func(c *v1.ConfigFile) { c.Architecture = "arm64" },
	}
	for name, mutateConfig := range cases {
		t.Run(name, func(t *testing.T) {
			img := withConfig(t, b.Image, mutateConfig)
			if errs := Check(img); len(errs) == 0 {
				t.Error("Check passed an unfit image")
			}
		})
	}
	t.Run("shell in the image", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		_ = tw.WriteHeader(&tar.Header{Name: "bin/sh", Mode: 0o755, Size: 2, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("#!"))
		_ = tw.Close()
		if errs := Check(appendLayer(t, b.Image, buf.Bytes())); len(errs) == 0 {
			t.Error("Check passed an image with /bin/sh")
		}
	})
}

// Building twice gives the same digest and the same tarball bytes, even
// from checkouts in different places (the source is copied first, so an
// edit in progress elsewhere in the tree cannot change it between the two
// builds); a different binary gives a different digest.
func TestBuildIsReproducible(t *testing.T) {
	src := serviceDir(t)
	one, two := filepath.Join(t.TempDir(), "a", "service"), filepath.Join(t.TempDir(), "checkout-b", "service")
	for _, dst := range []string{one, two} {
		if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
	}
	first, err := Build(Options{ServiceDir: one, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(Options{ServiceDir: two, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != again.Digest {
		t.Fatalf("two builds of the same source: %s then %s", first.Digest, again.Digest)
	}
	var a, b bytes.Buffer
	if err := first.WriteOCILayout(&a); err != nil {
		t.Fatal(err)
	}
	if err := again.WriteOCILayout(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the OCI layout tarballs of two builds differ")
	}
	x, _ := Assemble([]byte("\x7fELF one"), "amd64")
	y, _ := Assemble([]byte("\x7fELF two"), "amd64")
	if x.Digest == y.Digest {
		t.Fatal("different binaries, same digest")
	}
	if arm, err := Build(Options{ServiceDir: one, Arch: "arm64"}); err != nil || arm.Digest == first.Digest {
		t.Fatal("amd64 and arm64 images share a digest")
	}
}

// The tarball is an OCI image layout that names no reference and whose one
// manifest is the image's digest: what `ctr image import --digests
// --base-name` turns into exactly one image, <base-name>@<digest>
// (containerd v2.1.6 — MicroK8s 1.35's, build-scripts/components/
// containerd/version.sh at canonical/microk8s 1.35 — adds it in
// core/transfer/image/imagestore.go WithDigestRef, "%s@%s"; v1.6.36 —
// MicroK8s 1.32's — in import.go Import: a manifest without the
// io.containerd.image.name / org.opencontainers.image.ref.name annotations
// gets no name, and WithDigestRef(archive.DigestTranslator(prefix)) adds
// prefix@digest; images/archive/importer.go reads oci-layout and
// index.json).
func TestOCILayoutIsWhatContainerdImports(t *testing.T) {
	b := built(t, "arm64")
	dir := t.TempDir()
	file := filepath.Join(dir, "img.tar")
	if err := b.WriteOCILayoutFile(file); err != nil {
		t.Fatal(err)
	}
	files := untar(t, file, filepath.Join(dir, "layout"))
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %s", files["oci-layout"])
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != b.Digest || len(idx.Manifests[0].Annotations) != 0 ||
		idx.Manifests[0].Platform == nil || idx.Manifests[0].Platform.Architecture != "arm64" {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	// go-containerregistry reads it back as the same image.
	p, err := layout.FromPath(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(idx.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != b.Digest {
		t.Fatalf("read back %s, want %s", d, b.Digest)
	}
	if errs := Check(img); len(errs) > 0 {
		t.Fatal(errs)
	}
	if b.LocalRef() != LocalName+"@"+b.Digest {
		t.Fatal(b.LocalRef())
	}
	// The CRI resolves an image by its Docker-normalised name
	// (containerd v1.6.36 pkg/cri/server/helpers.go localResolve ->
	// docker.ParseDockerRef): the local name has a registry part, so
	// normalising leaves it unchanged and the imported name matches.
	if ref, err := name.ParseReference(b.LocalRef(), name.StrictValidation); err != nil || ref.Context().RegistryStr() != "microk8s-platform.local" {
		t.Fatalf("%s: %v", b.LocalRef(), err)
	}
}

// Push puts the image in a registry by a digest-derived tag and returns
// repository@digest; what the registry serves at that digest is the image.
func TestPushToRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	b := built(t, "amd64")
	repoName := strings.TrimPrefix(srv.URL, "http://") + "/team/comments"
	ref, err := b.Push(repoName, authn.DefaultKeychain)
	if err != nil {
		t.Fatal(err)
	}
	if want := repoName + "@" + b.Digest; ref != want {
		t.Fatalf("ref %s, want %s", ref, want)
	}
	if r, _ := RepoRef(repoName, b.Digest); r != ref {
		t.Fatalf("RepoRef %s, Push %s", r, ref)
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd.String() != b.Digest {
		t.Fatalf("registry serves %s", gd)
	}
	tags, err := remote.List(d.Context())
	if err != nil || len(tags) != 1 || tags[0] != strings.Replace(b.Digest, ":", "-", 1) {
		t.Fatalf("tags %v %v", tags, err)
	}
}

// The image service/Dockerfile builds passes the same Check. Docker is not
// on this machine; CI's service workflow (or anyone with Docker) runs it:
//
//	docker build -t comments service && docker save comments > /tmp/comments.tar
//	DOCKERFILE_IMAGE_TAR=/tmp/comments.tar go test ./infra/image -run Dockerfile
func TestDockerfileImagePassesTheSameCheck(t *testing.T) {
	path := os.Getenv("DOCKERFILE_IMAGE_TAR")
	if path == "" {
		t.Skip("DOCKERFILE_IMAGE_TAR not set: no image built with service/Dockerfile to check (needs Docker)")
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range Check(img) {
		t.Error(err)
	}
}

func TestBuildRefusesUnknownArch(t *testing.T) {
	if _, err := Build(Options{ServiceDir: serviceDir(t), Arch: "riscv64"}); err == nil || !strings.Contains(err.Error(), "amd64, arm64") {
		t.Fatal(err)
	}
}

func untar(t *testing.T, file, dir string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s has time %v", h.Name, h.ModTime)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			_ = os.MkdirAll(p, 0o755)
			continue
		}
		body, _ := io.ReadAll(tr)
		files[h.Name] = body
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func withConfig(t *testing.T, img v1.Image, f func(*v1.ConfigFile)) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	f(cf)
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func appendLayer(t *testing.T, img v1.Image, tarBytes []byte) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
