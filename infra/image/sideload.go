package image

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// SideloadArgs say what to ship and where.
type SideloadArgs struct {
	Built *Built
	// Tarball is the local OCI layout file (WriteOCILayoutFile), relative to
	// the program's working directory so the asset's path is the same on
	// every machine that runs the stack.
	Tarball string
	// Connection is the cluster's own SSH connection to the host.
	Connection remote.ConnectionInput
	// Installed is the cluster step after which MicroK8s (and its
	// containerd) runs; the copy and the import wait for it.
	Installed pulumi.Resource
	// HostTriggers identify the machine (cluster.Cluster.Triggers): a new
	// VM behind the same address has an empty image store, so the copy and
	// the import run again.
	HostTriggers pulumi.Array
}

// Sideload is the image on the host: copied over SSH, imported into
// MicroK8s's containerd (namespace k8s.io, where the kubelet's CRI looks).
type Sideload struct {
	pulumi.ResourceState
	Copy   *remote.CopyToRemote
	Import *remote.Command
	// Ref is what the Deployment runs: LocalName@sha256:..., never pulled.
	Ref string
}

// RemotePath is where the tarball lands on the host: /tmp, named by the
// digest, removed once imported.
func RemotePath(digest string) string {
	return "/tmp/microk8s-platform-comments-" + strings.TrimPrefix(digest, "sha256:")[:16] + ".oci.tar"
}

// ImportScript is the import step's command: check that the host's
// architecture is the image's, import the archive into MicroK8s's
// containerd under LocalName@digest only, pin it, confirm the CRI's
// namespace has it, and remove the archive.
//
// Pinned: when the disk passes the kubelet's image GC threshold (85 %) it
// deletes unused images, and a side-loaded image is in no registry: new
// pods would fail with ErrImageNeverPull, and nothing would import it
// again, since the step's triggers have not changed. The CRI reports an
// image carrying the label io.cri-containerd.pinned=pinned as pinned
// (containerd v2.1.6 internal/cri/store/image/image.go), and the kubelet's
// image GC skips pinned images.
//
// `microk8s ctr` runs containerd's ctr with --namespace k8s.io (MicroK8s
// 1.32 and 1.35 microk8s-resources/default-args/ctr), the namespace the CRI
// plugin serves the kubelet from. `ctr image import --base-name B --digests`
// creates B@<manifest digest> for each unnamed manifest of the archive's
// index.json: containerd v1.6.36 (MicroK8s 1.32) through the local importer,
// v2.1.6 (MicroK8s 1.35, the default channel) through the transfer service
// (cmd/ctr/commands/images/import.go, core/transfer/image/imagestore.go
// WithDigestRef: "%s@%s").
func ImportScript(b *Built, remotePath string) string {
	ref := b.LocalRef()
	return fmt.Sprintf(`set -eu
have=$(uname -m)
case "$have" in x86_64) have=amd64 ;; aarch64|arm64) have=arm64 ;; esac
if [ "$have" != %[1]s ]; then
  echo "the host is $have but the image was built for %[1]s: set the stack's instance type (or hostArch for target ssh) to match" >&2
  exit 1
fi
sudo -n microk8s ctr image import --base-name %[2]s --digests %[3]s
sudo -n microk8s ctr image label %[4]s %[5]s >/dev/null
sudo -n microk8s ctr image ls -q | grep -qxF %[4]s || { echo "containerd has no image %[4]s after the import" >&2; exit 1; }
rm -f %[3]s
echo imported %[4]s
`, shellQuote(b.Arch), shellQuote(LocalName), shellQuote(remotePath), shellQuote(ref), PinnedLabel)
}

// PinnedLabel is the CRI's pin (containerd v2.1.6
// internal/cri/store/image/image.go: key io.cri-containerd.pinned, value
// pinned).
const PinnedLabel = "io.cri-containerd.pinned=pinned"

// RemoveScript deletes the image from containerd when the stack no longer
// runs it (a newer digest rolled out, or destroy). A failure is not fatal:
// the host may be gone already.
func RemoveScript(b *Built) string {
	return fmt.Sprintf("sudo -n microk8s ctr image rm %s >/dev/null 2>&1 || true\n", shellQuote(b.LocalRef()))
}

// NewSideload declares the copy and the import.
func NewSideload(ctx *pulumi.Context, name string, args SideloadArgs, opts ...pulumi.ResourceOption) (*Sideload, error) {
	s := &Sideload{Ref: args.Built.LocalRef()}
	if err := ctx.RegisterComponentResource("microk8s-platform:image:Sideload", name, s, opts...); err != nil {
		return nil, err
	}
	deps := []pulumi.Resource{args.Installed}
	remotePath := RemotePath(args.Built.Digest)
	importScript := ImportScript(args.Built, remotePath)
	// The import removes the archive it imported, so a changed import
	// script must bring a fresh copy: both steps share triggers that hold
	// the script's hash.
	scriptHash := sha256.Sum256([]byte(importScript))
	triggers := append(pulumi.Array{pulumi.String(args.Built.Digest), pulumi.String(hex.EncodeToString(scriptHash[:]))}, args.HostTriggers...)
	var err error
	s.Copy, err = remote.NewCopyToRemote(ctx, name+"-copy", &remote.CopyToRemoteArgs{
		Connection: args.Connection,
		Source:     pulumi.NewFileAsset(args.Tarball),
		RemotePath: pulumi.String(remotePath),
		Triggers:   triggers,
	}, pulumi.Parent(s), pulumi.DependsOn(deps))
	if err != nil {
		return nil, err
	}
	s.Import, err = remote.NewCommand(ctx, name+"-import", &remote.CommandArgs{
		Connection: args.Connection,
		Create:     pulumi.String(importScript),
		Delete:     pulumi.String(RemoveScript(args.Built)),
		Triggers:   triggers,
	}, pulumi.Parent(s), pulumi.DependsOn([]pulumi.Resource{s.Copy}))
	if err != nil {
		return nil, err
	}
	return s, ctx.RegisterResourceOutputs(s, pulumi.Map{"ref": pulumi.String(s.Ref)})
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
