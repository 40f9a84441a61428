// Package cluster turns a Host into a MicroK8s cluster and a Kubernetes
// provider for it. It takes a host (address, SSH user and key), not a cloud,
// so one installer serves AWS, GCP and existing machines alike.
//
// Each step is a pulumi-command remote.Command that pipes one embedded
// script from scripts/microk8s to `sudo -n bash -s` on the host, waits for the
// step before it, and is triggered by its script's hash and its inputs:
// editing one script, or changing the channel, re-runs exactly that step.
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

// Args configure the cluster.
type Args struct {
	Host    vm.Host
	Channel string // MicroK8s snap channel
	// Observability enables the observability addon (kube-prometheus-stack).
	Observability bool
}

// Cluster is the installed MicroK8s and a provider that talks to it.
type Cluster struct {
	pulumi.ResourceState
	Kubeconfig pulumi.StringOutput // secret
	APIURL     pulumi.StringOutput
	Provider   *kubernetes.Provider
	// Steps are the remote commands in the order they run.
	Steps []*remote.Command
}

// Addons returns the addons to enable, in order; MetalLB's pool is the one
// private address of the VM, so the cloud's public IP reaches Kong.
func Addons(privateIP string, observability bool) string {
	a := []string{"dns", "hostpath-storage", fmt.Sprintf("metallb:%s-%s", privateIP, privateIP)}
	if observability {
		a = append(a, "observability")
	}
	return strings.Join(a, " ")
}

// New runs the install chain on the host and builds the provider.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("microk8s-platform:cluster:MicroK8s", name, c, opts...); err != nil {
		return nil, err
	}
	h := args.Host
	conn := remote.ConnectionArgs{
		Host:       h.PublicIP,
		Port:       pulumi.Float64(float64(h.Port)),
		User:       pulumi.String(h.User),
		PrivateKey: h.PrivateKey,
		// A new VM takes a minute or two to answer SSH: retry for ~10 minutes,
		// then fail with the provider's dial error.
		DialErrorLimit: pulumi.Int(60),
		PerDialTimeout: pulumi.Int(10),
	}

	var prev []pulumi.Resource = h.Ready
	step := func(stepName, script string, env map[string]pulumi.StringInput, secret bool) (*remote.Command, error) {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		triggers := pulumi.Array{pulumi.String(microk8s.Hash(script))}
		if h.MachineID != (pulumi.StringOutput{}) {
			// A new machine behind the same address runs every step again.
			triggers = append(triggers, h.MachineID)
		}
		parts := make([]any, 0, len(keys))
		for _, k := range keys {
			triggers = append(triggers, env[k])
			parts = append(parts, env[k])
		}
		create := pulumi.All(parts...).ApplyT(func(vals []any) string {
			var b strings.Builder
			b.WriteString("sudo -n env")
			for i, k := range keys {
				fmt.Fprintf(&b, " %s=%s", k, shellQuote(fmt.Sprint(vals[i])))
			}
			b.WriteString(" bash -s")
			return b.String()
		}).(pulumi.StringOutput)
		logging := remote.LoggingStdoutAndStderr
		ropts := []pulumi.ResourceOption{pulumi.Parent(c), pulumi.DependsOn(prev)}
		if secret {
			// Its stdout is a credential: keep it out of logs and plain state.
			logging = remote.LoggingStderr
			ropts = append(ropts, pulumi.AdditionalSecretOutputs([]string{"stdout"}))
		}
		cmd, err := remote.NewCommand(ctx, name+"-"+stepName, &remote.CommandArgs{
			Connection: conn,
			Create:     create,
			Stdin:      pulumi.String(microk8s.Script(script)),
			Triggers:   triggers,
			Logging:    logging,
		}, ropts...)
		if err != nil {
			return nil, err
		}
		prev = []pulumi.Resource{cmd}
		c.Steps = append(c.Steps, cmd)
		return cmd, nil
	}

	if _, err := step("wait", "wait-for-host.sh", map[string]pulumi.StringInput{"TIMEOUT": pulumi.String("600")}, false); err != nil {
		return nil, err
	}
	if _, err := step("install", "install-microk8s.sh", map[string]pulumi.StringInput{
		"CHANNEL": pulumi.String(args.Channel), "PUBLIC_IP": h.PublicIP, "SSH_USER": pulumi.String(h.User),
	}, false); err != nil {
		return nil, err
	}
	addons := h.PrivateIP.ApplyT(func(ip string) string { return Addons(ip, args.Observability) }).(pulumi.StringOutput)
	if _, err := step("addons", "enable-addons.sh", map[string]pulumi.StringInput{"ADDONS": addons}, false); err != nil {
		return nil, err
	}
	kc, err := step("kubeconfig", "kubeconfig.sh", map[string]pulumi.StringInput{"PUBLIC_IP": h.PublicIP}, true)
	if err != nil {
		return nil, err
	}

	c.Kubeconfig = pulumi.ToSecret(kc.Stdout).(pulumi.StringOutput)
	c.APIURL = pulumi.Sprintf("https://%s:%d", h.PublicIP, network.APIPort)
	c.Provider, err = kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig: c.Kubeconfig,
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{kc}))
	if err != nil {
		return nil, err
	}
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"apiUrl": c.APIURL, "kubeconfig": c.Kubeconfig})
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
