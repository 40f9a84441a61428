//go:build e2e

package main

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"microk8s-platform/infra/image"
	"microk8s-platform/internal/repo"
)

// e2eRegistry is the registry the e2e run serves (make e2e's sandbox sits
// on port base 19000; make local's registry is 127.0.0.1:18500).
const e2eRegistry = "127.0.0.1:19500"

// The Deployment on the API server runs exactly the image built from
// service/ — by digest, from the registry the program pushed it to — and
// that registry serves that digest.
func init() {
	registerAfterUp("image is the built digest", func(t *testing.T, env e2eEnv) {
		root, err := repo.Root()
		if err != nil {
			t.Fatal(err)
		}
		b, err := image.Build(image.Options{ServiceDir: filepath.Join(root, "service"), Arch: "amd64"})
		if err != nil {
			t.Fatal(err)
		}
		want := e2eRegistry + "/" + registryRepository + "@" + b.Digest
		d, err := env.Kube.AppsV1().Deployments("comments").Get(env.Ctx, "comments", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != want {
			t.Errorf("Deployment runs %s, want the built image %s", c.Image, want)
		}
		if c.ImagePullPolicy != "IfNotPresent" {
			t.Errorf("imagePullPolicy %s", c.ImagePullPolicy)
		}
		outs, err := env.Stack.Outputs(env.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := outs["appImageDigest"].Value; got != b.Digest {
			t.Errorf("stack output appImageDigest %v, want %s", got, b.Digest)
		}
		ref, err := name.NewDigest(want)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("the registry does not serve %s: %v", want, err)
		}
		if got, _ := img.Digest(); got.String() != b.Digest {
			t.Errorf("registry serves %s", got)
		}
	})
}
