package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"microk8s-platform/infra/cluster"
	"microk8s-platform/infra/image"
	"microk8s-platform/infra/vm"
	"microk8s-platform/internal/repo"
)

// Where the service's image comes from (the keys appImage, appTag,
// imageRepository, imagePullSecret, hostArch):
//
//   - by default the program builds it from service/ (infra/image) for the
//     VM's architecture, copies it to the VM over the cluster's SSH
//     connection and imports it into MicroK8s's containerd; the Deployment
//     runs it by digest and never pulls it (aws, gcp, ssh);
//   - imageRepository: the program builds it and pushes it there with the
//     user's registry credentials (docker login / credential helpers), and
//     the cluster pulls repository@digest — the way for target kubeconfig;
//   - appImage + appTag: a published image, pulled from its registry;
//   - imagePullSecret (secret): a .dockerconfigjson for a private registry.
//
// Target kubeconfig has no host to side-load onto, so it needs
// imageRepository or appImage; Validate says so before anything is declared.

// gcpArm are the Arm machine series of Compute Engine: Tau T2A and C4A
// ("Arm VMs on Compute", cloud.google.com/compute/docs/instances/arm-on-compute).
var gcpArm = regexp.MustCompile(`^(t2a|c4a)-`)

// Arch is the CPU architecture the service runs on: from the instance type
// (aws: the same rule that picks the arm64 AMI, vm.AMIName), the machine
// type (gcp), else hostArch (ssh, kubeconfig).
func (c Config) Arch() string {
	switch c.Target {
	case TargetAWS:
		if p, err := vm.AMIName(c.UbuntuRelease, c.InstanceType); err == nil && strings.Contains(p, "-arm64-") {
			return "arm64"
		}
		return "amd64"
	case TargetGCP:
		if gcpArm.MatchString(c.MachineType) {
			return "arm64"
		}
		return "amd64"
	}
	return c.HostArch
}

// BuildsImage reports whether the program builds the service's image
// (everything but appImage).
func (c Config) BuildsImage() bool { return c.AppImage == "" }

// loadImageKeys reads the image keys into c.
func loadImageKeys(p *config.Config, c *Config) {
	for key, dst := range map[string]*string{
		"appImage": &c.AppImage, "appTag": &c.AppTag, "imageRepository": &c.ImageRepository, "hostArch": &c.HostArch,
	} {
		if v, err := p.Try(key); err == nil {
			*dst = strings.TrimSpace(v)
		}
	}
	if v, err := p.TrySecret("imagePullSecret"); err == nil {
		c.ImagePullSecret, c.hasPullSecret = v, true
	}
}

// validateImage reports the image keys' problems through bad.
func (c Config) validateImage(bad func(key string, value any, format string, args ...any)) {
	switch {
	case c.AppImage != "" && c.ImageRepository != "":
		bad("imageRepository", c.ImageRepository, "cannot be combined with appImage %q: appImage runs a published image, imageRepository receives the one built from service/; set one", c.AppImage)
	case c.AppImage != "":
		if !imageRe.MatchString(c.AppImage) {
			bad("appImage", c.AppImage, "want an image repository without a tag, such as ghcr.io/org/comments")
		}
		if c.AppTag == "" {
			bad("appTag", nil, "required with appImage: a pinned tag such as 0.1.0 or a commit sha (never latest)")
		}
	case c.ImageRepository != "":
		if !imageRe.MatchString(c.ImageRepository) {
			bad("imageRepository", c.ImageRepository, "want a repository without a tag that your cluster can pull from, such as ghcr.io/you/comments")
		}
	case c.Target == TargetKubeconfig:
		bad("imageRepository", nil, "target kubeconfig has no host to copy the image built from service/ onto: set imageRepository to a registry your cluster pulls from "+
			"(pulumi config set imageRepository ghcr.io/you/comments; the program pushes there with your docker login), "+
			"or appImage and appTag to run a published image")
	}
	if c.AppTag != "" && (c.AppTag == "latest" || !tagRe.MatchString(c.AppTag)) {
		bad("appTag", c.AppTag, "want a pinned image tag such as 0.1.0 or a commit sha (never latest)")
	} else if c.AppTag != "" && c.AppImage == "" {
		bad("appTag", c.AppTag, "only means something with appImage (the built image is run by digest)")
	}
	if !slices.Contains(image.Arches, c.HostArch) {
		bad("hostArch", c.HostArch, "want one of %s (the architecture of the host or cluster nodes, targets ssh and kubeconfig)", strings.Join(image.Arches, ", "))
	}
}

// appImage decides the service's image, building, shipping or pushing it
// as configured, and returns what the app's Deployment needs.
func appImage(ctx *pulumi.Context, cfg Config, cl *cluster.Cluster) (AppImage, error) {
	out := AppImage{PullPolicy: "IfNotPresent"}
	if cfg.hasPullSecret {
		out.HasPullSecret = true
		out.PullSecret = cfg.ImagePullSecret.ApplyT(func(s string) (string, error) {
			var doc struct {
				Auths map[string]json.RawMessage `json:"auths"`
			}
			if err := json.Unmarshal([]byte(s), &doc); err != nil || len(doc.Auths) == 0 {
				return "", fmt.Errorf(`imagePullSecret: want the JSON of a docker config with credentials, {"auths":{"ghcr.io":{"auth":"<base64 user:token>"}}}`)
			}
			return s, nil
		}).(pulumi.StringOutput)
	}
	if !cfg.BuildsImage() {
		out.Ref, out.Version = cfg.AppImage+":"+cfg.AppTag, cfg.AppTag
		return out, nil
	}
	root, err := repo.Root()
	if err != nil {
		return out, err
	}
	built, err := buildService(filepath.Join(root, "service"), cfg.Arch())
	if err != nil {
		return out, err
	}
	out.Version = strings.TrimPrefix(built.Digest, "sha256:")[:12]
	ctx.Export("appImageDigest", pulumi.String(built.Digest))

	if cfg.ImageRepository != "" {
		if out.Ref, err = image.RepoRef(cfg.ImageRepository, built.Digest); err != nil {
			return out, err
		}
		// A preview changes nothing anywhere; an update pushes before the
		// Deployment that references the digest is declared.
		if !ctx.DryRun() {
			if _, err := built.Push(cfg.ImageRepository, authn.DefaultKeychain); err != nil {
				return out, fmt.Errorf("imageRepository %s: %w (log in with docker login, or set a credential helper)", cfg.ImageRepository, err)
			}
		}
		return out, nil
	}

	// Side-load onto the VM.
	tarball := filepath.Join(root, ".image", "comments-linux-"+built.Arch+".oci.tar")
	if err := built.WriteOCILayoutFile(tarball); err != nil {
		return out, err
	}
	rel := tarball
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, tarball); err == nil {
			rel = r
		}
	}
	s, err := image.NewSideload(ctx, "comments-image", image.SideloadArgs{
		Built: built, Tarball: rel, Connection: cl.Connection, Installed: cl.Installed, HostTriggers: cl.Triggers,
	})
	if err != nil {
		return out, err
	}
	out.Ref, out.PullPolicy, out.Ready = s.Ref, "Never", []pulumi.Resource{s.Import}
	return out, nil
}

// AppImage is the service's image as the app package takes it.
type AppImage struct {
	Ref           string              // repository@sha256:... or repository:tag
	Version       string              // app.kubernetes.io/version: the tag, or the digest's first 12 hex digits
	PullPolicy    string              // Never for a side-loaded image, else IfNotPresent
	PullSecret    pulumi.StringOutput // .dockerconfigjson (secret), when HasPullSecret
	HasPullSecret bool
	Ready         []pulumi.Resource // the import the Deployment waits for
}

var builds sync.Map // dir|arch -> *image.Built

// buildService builds once per service directory and architecture in a
// process (the tests run the program many times).
func buildService(dir, arch string) (*image.Built, error) {
	key := dir + "|" + arch
	if b, ok := builds.Load(key); ok {
		return b.(*image.Built), nil
	}
	b, err := image.Build(image.Options{ServiceDir: dir, Arch: arch})
	if err != nil {
		return nil, err
	}
	builds.Store(key, b)
	return b, nil
}

func (a AppImage) pullSecret() *pulumi.StringOutput {
	if !a.HasPullSecret {
		return nil
	}
	return &a.PullSecret
}
