// Package cluster turns a Host into a MicroK8s cluster and a Kubernetes
// provider for it. It takes a host (address, SSH user and key), not a cloud,
// so one installer serves AWS, GCP and existing machines alike.
//
// Each step is a pulumi-command remote.Command that pipes one embedded
// script from scripts/microk8s to `sudo -n bash -s` on the host, waits for the
// step before it, and is bounded: the host kills it after the step's timeout
// and the step fails saying what it waited for (Command). Inside the scripts
// each `microk8s enable`, snap call and readiness wait has its own bound too.
//
// # Lifecycle
//
//   - Replace: every step's triggers hold the machine's identity
//     (vm.Host.MachineID: the EC2 instance id, the GCE instance's numeric id),
//     so a new VM behind the same Elastic/static IP runs every step again
//     instead of keeping the old VM's "done". Target ssh has no machine id;
//     its steps re-run when the address changes, or with
//     `pulumi up --replace <step urn>`.
//   - Channel change (microk8sChannel): re-runs the install step, which
//     refreshes the snap explicitly (snapd's automatic refreshes are held),
//     and refuses a downgrade or a jump over a minor on the host before
//     changing anything. Validate refuses -strict channels.
//   - MetalLB: its pool is one address of the host (the VM's private IP, or
//     sshPrivateIp, or the host's default-route address); a changed address
//     re-runs the addons step, which patches the addon's IPAddressPool.
//   - The API server's address (Cluster.APIAddress) is read from the
//     cluster by the last step, which re-runs with the machine like the
//     others. On target ssh, a host whose default-route address changes
//     under the same sshHost (DHCP) needs
//     `pulumi up --replace <the apiaddress step's urn>`.
//   - The provider carries a clusterIdentifier derived from project and
//     stack, so a re-rendered kubeconfig (a new certificate, a new address)
//     updates the provider instead of replacing every object on it.
//     (pulumi-kubernetes v4.32.0 ProviderArgs.ClusterIdentifier: "the
//     provider will _only_ be replaced when clusterIdentifier changes".)
//
// The upstream facts the scripts rely on are listed, with their sources, in
// scripts/microk8s/scripts_test.go.
package cluster

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/network"
	"microk8s-platform/infra/vm"
	"microk8s-platform/scripts/microk8s"
)

// AlertmanagerSecret is the Secret in namespace observability that holds the
// Alertmanager configuration; the addons step points kube-prometheus-stack at
// it and the Kubernetes layer (infra/observability) writes it.
const AlertmanagerSecret = "platform-alertmanager"

// Args configure the cluster.
type Args struct {
	Host    vm.Host
	Channel string // MicroK8s snap channel
	// Observability enables the observability addon (kube-prometheus-stack)
	// with Prometheus data on the host and Alertmanager from
	// AlertmanagerSecret.
	Observability bool
	// PrometheusStorageGiB is the size of Prometheus' volume; 10 when 0.
	PrometheusStorageGiB int
	// ClusterIdentifier names the cluster for the Kubernetes provider; it
	// must stay the same for the life of the stack.
	ClusterIdentifier string
	// DataDirs are the directories made in the host's data directory
	// (Host.DataDir), each owned by the user its image runs as.
	DataDirs []DataDir
}

// DataMount is where the data disk is mounted on the host.
const DataMount = vm.DataMount

// PrometheusDataDir is Prometheus's directory on the data disk, owned by
// the user the addons step makes it run as (enable-addons.sh sets
// prometheusSpec.securityContext to these ids).
var PrometheusDataDir = DataDir{Name: "prometheus", UID: 1000, GID: 2000}

// DataDir is one directory of the platform's data: name under the host's
// data directory, owner.
type DataDir struct {
	Name     string
	UID, GID int
}

// Cluster is the installed MicroK8s and a provider that talks to it.
type Cluster struct {
	pulumi.ResourceState
	Kubeconfig pulumi.StringOutput // secret
	APIURL     pulumi.StringOutput
	// APIAddress is the IPv4 address the API server advertises, as the
	// cluster records it (the kubernetes Service's EndpointSlice, read by
	// the apiaddress step; ParseAPIAddress). It is where a pod's connection
	// to the kubernetes Service ends up after kube-proxy's DNAT. MicroK8s
	// sets no --advertise-address, so this is the address of the host's
	// default route, which on a multi-homed host need not be
	// Host.PrivateIP (sshPrivateIp).
	APIAddress pulumi.StringOutput
	Provider   *kubernetes.Provider
	// Connection reaches the host over SSH, for steps added by other
	// packages (copying and importing images).
	Connection remote.ConnectionArgs
	// Triggers identify the machine and its address; a step added by
	// another package carries them so that it re-runs on a new machine.
	Triggers pulumi.Array
	// Installed is the step after which MicroK8s runs (snap installed,
	// node ready).
	Installed *remote.Command
	// Steps are the remote commands in the order they run.
	Steps []*remote.Command
}

// Step is one remote step: its script, how long it may take and what it
// waits for (the message when it times out).
type Step struct {
	Name, Script string
	Timeout      int // seconds
	Waits        string
}

// Steps are the install chain, in order.
var Steps = []Step{
	{"wait", "wait-for-host.sh", 900, "cloud-init and snapd on a new host"},
	// Only on a host with a data directory (vm.Host.DataDir: the data
	// disk's mount point, or target ssh's dataDir), and before MicroK8s:
	// its services are made to wait for the mount.
	{"data", "mount-data-disk.sh", 900, "the data disk to appear, its filesystem and its mount"},
	{"install", "install-microk8s.sh", 1800, "the MicroK8s snap, its certificate and a ready node"},
	{"addons", "enable-addons.sh", 3600, "RBAC and the dns, hostpath-storage, metallb and observability addons"},
	{"kubeconfig", "kubeconfig.sh", 120, "microk8s config"},
	// Read-only, last: only Kong's NetworkPolicy waits for it
	// (Cluster.APIAddress).
	{"apiaddress", "api-address.sh", 420, "the API server's advertised address in EndpointSlice default/kubernetes"},
}

// ClusterIdentifier is the provider's stable identity for a stack's cluster.
func ClusterIdentifier(project, stack string) string {
	return fmt.Sprintf("%s-%s-microk8s", project, stack)
}

// Command is the remote command line of a step: the environment (values
// shell-quoted), then bash reading the script from stdin, killed after
// timeout seconds with a message saying what it waited for.
func Command(env map[string]string, timeout int, waits string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("sudo -n env")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, shellQuote(env[k]))
	}
	// $0 is the timeout, $1 what was awaited; stdin goes on to bash -s.
	fmt.Fprintf(&b, ` bash -c 'timeout -k 30 "$0" bash -s; rc=$?; if [ "$rc" -eq 124 ]; then echo "step timed out after $0s waiting for $1" >&2; fi; exit "$rc"' %d %s`,
		timeout, shellQuote(waits))
	return b.String()
}

// New runs the install chain on the host and builds the provider.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("microk8s-platform:cluster:MicroK8s", name, c, opts...); err != nil {
		return nil, err
	}
	h := args.Host
	c.Connection = remote.ConnectionArgs{
		Host:       h.PublicIP,
		Port:       pulumi.Float64(float64(h.Port)),
		User:       pulumi.String(h.User),
		PrivateKey: h.PrivateKey,
		// A new VM takes a minute or two to answer SSH: retry for ~10 minutes,
		// then fail with the provider's dial error.
		DialErrorLimit: pulumi.Int(60),
		PerDialTimeout: pulumi.Int(10),
	}
	// The machine's identity: a new VM behind the same address re-runs
	// every step. Target ssh has none; its address stands for it.
	c.Triggers = pulumi.Array{h.PublicIP}
	if h.MachineID != (pulumi.StringOutput{}) {
		c.Triggers = append(c.Triggers, h.MachineID)
	}
	storage := args.PrometheusStorageGiB
	if storage == 0 {
		storage = 10
	}

	env := map[string]map[string]pulumi.StringInput{
		"wait":    {"TIMEOUT": pulumi.String("600")},
		"install": {"CHANNEL": pulumi.String(args.Channel), "PUBLIC_IP": h.PublicIP, "SSH_USER": pulumi.String(h.User)},
		"addons": {
			// Empty for target ssh without sshPrivateIp: the script finds
			// the host's address itself.
			"METALLB_ADDRESS":     h.PrivateIP,
			"OBSERVABILITY":       pulumi.String(fmt.Sprint(args.Observability)),
			"ALERTMANAGER_SECRET": pulumi.String(AlertmanagerSecret),
			"PROMETHEUS_STORAGE":  pulumi.String(fmt.Sprintf("%dGi", storage)),
			// hostpath does not enforce the claim's size: Prometheus's own
			// cap, 80 % of it (its units are powers of two, as Gi).
			"PROMETHEUS_RETENTION_SIZE": pulumi.String(fmt.Sprintf("%dGB", max(1, storage*8/10))),
			"PROMETHEUS_UID":            pulumi.String(fmt.Sprint(PrometheusDataDir.UID)),
			"PROMETHEUS_GID":            pulumi.String(fmt.Sprint(PrometheusDataDir.GID)),
		},
		"kubeconfig": {"PUBLIC_IP": h.PublicIP},
		"apiaddress": {"TIMEOUT": pulumi.String("300")},
	}
	if h.DataDir != "" {
		dirs := make([]string, 0, len(args.DataDirs))
		for _, dd := range args.DataDirs {
			dirs = append(dirs, fmt.Sprintf("%s:%d:%d", dd.Name, dd.UID, dd.GID))
		}
		data := map[string]pulumi.StringInput{"MOUNT_POINT": pulumi.String(h.DataDir), "DIRS": pulumi.String(strings.Join(dirs, " "))}
		// DISK_ID, the cloud's id of the disk (on GCE the device path is
		// the same for every disk): a new disk re-runs the step. Without
		// a disk (target ssh) the step makes the directories in place.
		if d := h.DataDisk; d != nil {
			data["DEVICE"], data["DISK_ID"] = d.Device, d.ID
		}
		env["data"] = data
		env["addons"]["DATA_MOUNT"] = pulumi.String(h.DataDir)
	}

	var prev []pulumi.Resource = h.Ready
	var kc, apiAddr *remote.Command
	for _, s := range Steps {
		vars, ok := env[s.Name]
		if !ok {
			continue // the data step on a host without a data disk
		}
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		triggers := pulumi.Array{pulumi.String(microk8s.Hash(s.Script))}
		triggers = append(triggers, c.Triggers...)
		parts := make([]any, 0, len(keys))
		for _, k := range keys {
			triggers = append(triggers, vars[k])
			parts = append(parts, vars[k])
		}
		create := pulumi.All(parts...).ApplyT(func(vals []any) string {
			m := map[string]string{}
			for i, k := range keys {
				m[k] = fmt.Sprint(vals[i])
			}
			return Command(m, s.Timeout, s.Waits)
		}).(pulumi.StringOutput)
		secret := s.Name == "kubeconfig"
		logging := remote.LoggingStdoutAndStderr
		ropts := []pulumi.ResourceOption{pulumi.Parent(c), pulumi.DependsOn(prev)}
		if secret {
			// Its stdout is a credential: keep it out of logs and plain state.
			logging = remote.LoggingStderr
			ropts = append(ropts, pulumi.AdditionalSecretOutputs([]string{"stdout"}))
		}
		cmd, err := remote.NewCommand(ctx, name+"-"+s.Name, &remote.CommandArgs{
			Connection: c.Connection,
			Create:     create,
			Stdin:      pulumi.String(microk8s.Script(s.Script)),
			Triggers:   triggers,
			Logging:    logging,
		}, ropts...)
		if err != nil {
			return nil, err
		}
		prev = []pulumi.Resource{cmd}
		c.Steps = append(c.Steps, cmd)
		switch s.Name {
		case "install":
			c.Installed = cmd
		case "kubeconfig":
			kc = cmd
		case "apiaddress":
			apiAddr = cmd
		}
	}

	c.Kubeconfig = pulumi.ToSecret(kc.Stdout).(pulumi.StringOutput)
	c.APIURL = pulumi.Sprintf("https://%s:%d", h.PublicIP, network.APIPort)
	c.APIAddress = apiAddr.Stdout.ApplyT(func(out string) (string, error) {
		a, err := ParseAPIAddress(out)
		if err != nil {
			return "", fmt.Errorf("%s-apiaddress: %w", name, err)
		}
		return a.String(), nil
	}).(pulumi.StringOutput)
	var id pulumi.StringPtrInput
	if args.ClusterIdentifier != "" {
		id = pulumi.String(args.ClusterIdentifier)
	}
	var err error
	c.Provider, err = kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig:        c.Kubeconfig,
		ClusterIdentifier: id,
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{kc}))
	if err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"apiUrl": c.APIURL, "kubeconfig": c.Kubeconfig, "apiAddress": c.APIAddress})
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
