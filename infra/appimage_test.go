package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/image"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/internal/repo"
)

var (
	testRegistryOnce sync.Once
	testRegistryHost string
)

// testImageRepository is a repository in a registry served in-process on
// 127.0.0.1 for the life of the test binary: what the local stack's
// imageRepository points at (stacks/local serves the same registry).
func testImageRepository(t *testing.T) string {
	t.Helper()
	testRegistryOnce.Do(func() {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		testRegistryHost = strings.TrimPrefix(srv.URL, "http://")
	})
	return testRegistryHost + "/microk8s-platform/comments"
}

// localStack is the committed local stack as stacks/local runs it: its
// file, a database password and the sandbox's registry.
func localStack(t *testing.T) mt.Config {
	return mt.StackFile(t, "local").Set(map[string]string{"imageRepository": testImageRepository(t)}).
		Secret(map[string]string{"dbPassword": dbPass})
}

func builtFor(t *testing.T, arch string) *image.Built {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildService(filepath.Join(root, "service"), arch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appContainer(t *testing.T, m *mt.Mocks) (mt.Resource, resource.PropertyMap) {
	t.Helper()
	for _, r := range m.ByType("kubernetes:apps/v1:Deployment") {
		if mt.Str(r.Inputs, "metadata.name") == app.ServiceName && mt.Str(r.Inputs, "metadata.namespace") == app.Namespace {
			return r, mt.Get(r.Inputs, "spec.template.spec.containers").ArrayValue()[0].ObjectValue()
		}
	}
	t.Fatal("no comments Deployment")
	return mt.Resource{}, nil
}

func hasDep(r mt.Resource, urnSuffix string) bool {
	return slices.ContainsFunc(r.Dependencies, func(u string) bool { return strings.HasSuffix(u, urnSuffix) })
}

// On every target with a VM, the image built from service/ for the VM's
// architecture is copied over the cluster's SSH connection, imported into
// MicroK8s's containerd once MicroK8s is installed, and run by digest,
// never pulled.
//
// Upstream facts this relies on:
//   - `microk8s ctr` is containerd's ctr with --namespace k8s.io, the
//     namespace the CRI serves the kubelet from (canonical/microk8s 1.32 and
//     1.35, microk8s-resources/default-args/ctr and wrappers/microk8s-ctr.wrapper);
//   - MicroK8s 1.35 ships containerd v2.1.6 and 1.32 v1.6.36
//     (build-scripts/components/containerd/version.sh); in both
//     `ctr image import --base-name B --digests` names each unnamed
//     manifest of an OCI archive B@<digest> (cmd/ctr/commands/images/
//     import.go; v2: core/transfer/image/imagestore.go WithDigestRef);
//   - the CRI sees images created through ctr (pkg/cri/server/events.go,
//     ImageCreate -> updateImage) and resolves a reference by its
//     Docker-normalised name (helpers.go localResolve), which for a name
//     with a registry host is the name itself.
func TestBuiltImageIsSideloadedOnEveryVMTarget(t *testing.T) {
	gcp := map[string]string{"target": "gcp", "gcp:project": "acme-dev", "gcp:region": "us-central1", "gcp:zone": "us-central1-a", "aws:region": "", "budgetEmails": ""}
	ssh := map[string]string{"target": "ssh", "sshHost": "192.0.2.10", "aws:region": "", "budgetEmails": ""}
	cases := []struct {
		name, arch string
		set        map[string]string
		host       string // the SSH address the copy goes to
	}{
		{"aws", "amd64", nil, mt.AWSPublicIP},
		{"aws graviton", "arm64", map[string]string{"instanceType": "t4g.large", "spot": "false"}, mt.AWSPublicIP},
		{"gcp", "amd64", gcp, mt.GCPPublicIP},
		{"ssh", "amd64", ssh, "192.0.2.10"},
		{"ssh arm64 host", "arm64", merge(ssh, map[string]string{"hostArch": "arm64"}), "192.0.2.10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")).Set(c.set))
			b := builtFor(t, c.arch)

			cp := m.One(t, "command:remote:CopyToRemote", "comments-image-copy")
			if got := mt.Str(cp.Inputs, "remotePath"); got != image.RemotePath(b.Digest) {
				t.Errorf("copy to %s, want %s", got, image.RemotePath(b.Digest))
			}
			src := cp.Inputs["source"]
			if !src.IsAsset() || !strings.HasSuffix(src.AssetValue().Path, filepath.Join(".image", "comments-linux-"+c.arch+".oci.tar")) || filepath.IsAbs(src.AssetValue().Path) {
				t.Errorf("copy source %v: want the OCI tarball for %s, by a path relative to the program", src, c.arch)
			}
			if h := mt.Str(cp.Inputs, "connection.host"); h != c.host {
				t.Errorf("copy connects to %q, want %q", h, c.host)
			}
			if !hasDep(cp, "::microk8s-install") {
				t.Errorf("copy does not wait for the MicroK8s install: %v", cp.Dependencies)
			}
			if trig := mt.Get(cp.Inputs, "triggers").ArrayValue(); len(trig) == 0 || trig[0].StringValue() != b.Digest {
				t.Errorf("copy triggers %v do not start with the digest", trig)
			}

			imp := m.One(t, "command:remote:Command", "comments-image-import")
			create := mt.Str(imp.Inputs, "create")
			if create != image.ImportScript(b, image.RemotePath(b.Digest)) ||
				!strings.Contains(create, "sudo -n microk8s ctr image import --base-name 'microk8s-platform.local/comments' --digests '"+image.RemotePath(b.Digest)+"'") ||
				!strings.Contains(create, `!= '`+c.arch+`' ]`) {
				t.Errorf("import command:\n%s", create)
			}
			// The import deletes the archive: a changed import script must
			// re-run the copy too, so the copy's triggers carry its hash.
			importHash := sha256.Sum256([]byte(create))
			if !slices.Contains(mt.Strings(cp.Inputs, "triggers"), hex.EncodeToString(importHash[:])) {
				t.Errorf("copy triggers %v lack the import script's hash", mt.Strings(cp.Inputs, "triggers"))
			}
			if !strings.Contains(mt.Str(imp.Inputs, "delete"), "microk8s ctr image rm '"+b.LocalRef()+"'") {
				t.Errorf("import delete: %s", mt.Str(imp.Inputs, "delete"))
			}
			if !hasDep(imp, "::comments-image-copy") {
				t.Errorf("import does not wait for the copy: %v", imp.Dependencies)
			}

			d, ctr := appContainer(t, m)
			if got := mt.Str(ctr, "image"); got != image.LocalName+"@"+b.Digest {
				t.Errorf("Deployment image %s, want %s@%s", got, image.LocalName, b.Digest)
			}
			if p := mt.Str(ctr, "imagePullPolicy"); p != "Never" {
				t.Errorf("imagePullPolicy %s, want Never (the image is on the node, nowhere else)", p)
			}
			if !hasDep(d, "::comments-image-import") {
				t.Errorf("Deployment does not wait for the import: %v", d.Dependencies)
			}
		})
	}
}

// Target kubeconfig has no host to side-load onto: without imageRepository
// or appImage the program stops before declaring anything, saying what to set.
func TestKubeconfigTargetWithoutImageSourceDeclaresNothing(t *testing.T) {
	c := mt.StackFile(t, "local").Secret(map[string]string{"dbPassword": dbPass})
	m, err := mt.Run(t, "local", c, Run)
	if err == nil {
		t.Fatal("program succeeded")
	}
	for _, w := range []string{"imageRepository: not set; target kubeconfig has no host", "pulumi config set imageRepository", "or appImage and appTag"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if len(m.Resources) != 0 {
		t.Errorf("%d resources declared", len(m.Resources))
	}
}

// With imageRepository the program pushes the built image there (the
// registry then serves that digest) and the Deployment pulls it by digest.
func TestImageRepositoryGetsTheBuiltImage(t *testing.T) {
	m, _ := run(t, "local", localStack(t))
	b := builtFor(t, "amd64")
	_, ctr := appContainer(t, m)
	want := testImageRepository(t) + "@" + b.Digest
	if got := mt.Str(ctr, "image"); got != want {
		t.Fatalf("image %s, want %s", got, want)
	}
	if p := mt.Str(ctr, "imagePullPolicy"); p != "IfNotPresent" {
		t.Errorf("imagePullPolicy %s", p)
	}
	d, err := name.NewDigest(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(d)
	if err != nil {
		t.Fatalf("the registry does not serve %s: %v", want, err)
	}
	if gd, _ := got.Digest(); gd.String() != b.Digest {
		t.Fatalf("registry serves %s", gd)
	}
	if len(m.ByType("command:remote:CopyToRemote")) != 0 {
		t.Error("a copy to a host on target kubeconfig")
	}
}

// appImage + appTag run a published image; imagePullSecret becomes a
// dockerconfigjson Secret (still secret) the pods pull with.
func TestAppImageWithPullSecret(t *testing.T) {
	pull := `{"auths":{"ghcr.io":{"auth":"dXNlcjp0b2tlbg=="}}}`
	c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"appImage": "ghcr.io/acme/comments", "appTag": "1.4.2"}).
		Secret(map[string]string{"imagePullSecret": pull})
	m, _ := run(t, "dev", c)
	_, ctr := appContainer(t, m)
	if got := mt.Str(ctr, "image"); got != "ghcr.io/acme/comments:1.4.2" {
		t.Errorf("image %s", got)
	}
	if len(m.ByType("command:remote:CopyToRemote")) != 0 || len(m.ByType("microk8s-platform:image:Sideload")) != 0 {
		t.Error("a published image is side-loaded")
	}
	objs := kubeObjects(m)
	s := find(t, objs, "Secret", app.Namespace, app.PullSecretName)
	if mt.Str(s.Inputs, "type") != "kubernetes.io/dockerconfigjson" || !mt.IsSecret(s.Inputs, "stringData..dockerconfigjson") && !mt.Get(s.Inputs, "stringData").ObjectValue()[".dockerconfigjson"].IsSecret() {
		t.Errorf("pull secret: %v", s.Inputs)
	}
	d := find(t, objs, "Deployment", app.Namespace, app.ServiceName)
	refs := mt.Get(d.Inputs, "spec.template.spec.imagePullSecrets").ArrayValue()
	if len(refs) != 1 || mt.Str(refs[0].ObjectValue(), "name") != app.PullSecretName {
		t.Errorf("imagePullSecrets %v", refs)
	}
}

func TestImageKeysAreValidated(t *testing.T) {
	cases := []struct {
		name  string
		stack string
		set   map[string]string
		want  string
	}{
		{"image and repository", "dev", map[string]string{"appImage": "ghcr.io/a/comments", "appTag": "1.0", "imageRepository": "ghcr.io/a/c"}, `imageRepository: "ghcr.io/a/c" cannot be combined with appImage`},
		{"image without tag", "dev", map[string]string{"appImage": "ghcr.io/a/comments"}, `appTag: not set; required with appImage`},
		{"latest", "dev", map[string]string{"appImage": "ghcr.io/a/comments", "appTag": "latest"}, `appTag: "latest" want a pinned image tag`},
		{"tag alone", "dev", map[string]string{"appTag": "0.1.0"}, `appTag: "0.1.0" only means something with appImage`},
		{"repository with tag", "dev", map[string]string{"imageRepository": "ghcr.io/a/comments:1"}, `imageRepository: "ghcr.io/a/comments:1" want a repository without a tag`},
		{"host arch", "dev", map[string]string{"hostArch": "x86_64"}, `hostArch: "x86_64" want one of amd64, arm64`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := mt.Run(t, c.stack, userKeys(mt.StackFile(t, c.stack)).Set(c.set), Run)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			if len(m.Resources) != 0 {
				t.Errorf("%d resources declared", len(m.Resources))
			}
		})
	}
}

// The architecture follows the machine: Graviton instance types (the same
// rule that picks the arm64 Ubuntu AMI) and GCE's Arm series, Tau T2A and
// C4A ("Arm VMs on Compute", cloud.google.com/compute/docs/instances/
// arm-on-compute), are arm64; hostArch says it for ssh and kubeconfig.
func TestArchFollowsTheMachine(t *testing.T) {
	d := Defaults()
	for _, c := range []struct {
		target, machine, hostArch, want string
	}{
		{TargetAWS, "t3.large", "", "amd64"},
		{TargetAWS, "t4g.large", "", "arm64"},
		{TargetAWS, "m7g.xlarge", "", "arm64"},
		{TargetAWS, "c7gd.large", "", "arm64"},
		{TargetAWS, "m7i.large", "", "amd64"},
		{TargetGCP, "e2-standard-2", "", "amd64"},
		{TargetGCP, "t2a-standard-2", "", "arm64"},
		{TargetGCP, "c4a-standard-4", "", "arm64"},
		{TargetSSH, "", "arm64", "arm64"},
		{TargetKubeconfig, "", "amd64", "amd64"},
	} {
		cfg := d
		cfg.Target, cfg.InstanceType, cfg.MachineType, cfg.HostArch = c.target, c.machine, c.machine, c.hostArch
		if got := cfg.Arch(); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.target, c.machine, got, c.want)
		}
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// wantAppImage is the Deployment's image for a committed stack: the image
// built from service/, by digest — side-loaded (LocalName) on a VM, in the
// registry on target kubeconfig.
func wantAppImage(t *testing.T, stackFile map[string]string) string {
	t.Helper()
	b := builtFor(t, "amd64")
	if stackFile[mt.Project+":target"] == TargetKubeconfig {
		return testImageRepository(t) + "@" + b.Digest
	}
	return b.LocalRef()
}
