package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"microk8s-platform/infra/image"
	"microk8s-platform/internal/repo"
)

// The sandbox's registry takes the pushed image and serves it back by
// digest, on loopback only.
func TestServeRegistryTakesThePush(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	repository, err := serveRegistry(addr)
	if err != nil {
		t.Fatal(err)
	}
	if repository != addr+"/"+registryRepository {
		t.Fatalf("repository %s", repository)
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := image.Build(image.Options{ServiceDir: filepath.Join(root, "service"), Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := b.Push(repository, authn.DefaultKeychain)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := name.NewDigest(ref)
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got.String() != b.Digest {
		t.Fatalf("served %s, pushed %s", got, b.Digest)
	}
	for _, bad := range []string{"0.0.0.0:18500", "10.0.0.1:18500", "127.0.0.1"} {
		if _, err := serveRegistry(bad); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// make local's closing words say what the sandbox did not do.
func TestSandboxNoteTellsTheTruth(t *testing.T) {
	n := sandboxNote("127.0.0.1:18500")
	for _, w := range []string{"simulated by kwok", "No container runs", "nothing answers at appUrl", "CLUSTER_KUBECONFIG", "IMAGE_REPOSITORY", "port-forward svc/kong-proxy", "make up STACK=dev"} {
		if !strings.Contains(n, w) {
			t.Errorf("note lacks %q", w)
		}
	}
}
