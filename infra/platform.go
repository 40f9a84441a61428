package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/budget"
	"microk8s-platform/infra/cluster"
	"microk8s-platform/infra/gateway"
	"microk8s-platform/infra/network"
	"microk8s-platform/infra/observability"
	"microk8s-platform/infra/tags"
	"microk8s-platform/infra/vm"
)

// Run is the whole program: load the stack's configuration, validate it,
// declare the platform. stacks/platform/main.go passes it to pulumi.Run;
// the tests and the local sandbox's Automation API driver call it too.
func Run(ctx *pulumi.Context) error {
	cfg, err := Load(ctx)
	if err != nil {
		return fmt.Errorf("stack configuration:\n%w", err)
	}
	_, err = Platform(ctx, cfg)
	return err
}

// Outputs are what the platform exposes (also exported as stack outputs).
type Outputs struct {
	PublicIP   pulumi.StringOutput // empty for target kubeconfig
	SSHCommand pulumi.StringOutput
	Kubeconfig pulumi.StringOutput // secret; empty for target kubeconfig
	APIURL     pulumi.StringOutput
	AppURL     pulumi.StringOutput
	Grafana    pulumi.StringOutput
	// MonthlyCostUSD is the VM's estimated cost; 0 when unknown or no VM.
	MonthlyCostUSD float64
	Provider       *kubernetes.Provider
}

// Platform declares everything for cfg. It validates cfg first, so a bad
// configuration declares nothing.
func Platform(ctx *pulumi.Context, cfg Config) (*Outputs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid stack configuration (nothing was changed):\n%w", err)
	}
	owner := tags.Owner{Project: cfg.Project, Stack: cfg.Stack}
	out := &Outputs{}

	var host vm.Host
	switch cfg.Target {
	case TargetAWS:
		net, err := network.NewAWS(ctx, "network", network.AWSArgs{
			Owner: owner, VpcCidr: cfg.VpcCidr, SubnetCidr: cfg.SubnetCidr, AdminCidrs: cfg.AdminCidrs,
			InstanceType: cfg.InstanceType,
		})
		if err != nil {
			return nil, err
		}
		machine, err := vm.NewAWS(ctx, "vm", vm.AWSArgs{
			Owner: owner, SubnetID: net.SubnetID, SecurityGroupID: net.SecurityGroupID, Internet: net.Internet,
			InstanceType: cfg.InstanceType, Spot: cfg.Spot, RootVolumeGiB: cfg.RootVolumeGiB, UbuntuRelease: cfg.UbuntuRelease,
			SSHUser: cfg.SSHUser, SSHPort: cfg.SSHPort, SSHPublicKey: cfg.SSHPublicKey, SSHPrivateKey: cfg.SSHPrivateKey,
			AvailabilityZone: net.AvailabilityZone, DataVolumeGiB: cfg.DataVolumeGiB, DataSnapshotID: cfg.DataSnapshotID,
			RetainData: cfg.RetainsData(), SnapshotRetentionDays: cfg.SnapshotRetentionDays,
		})
		if err != nil {
			return nil, err
		}
		host = machine.Host
		ctx.Export("dataVolumeId", machine.DataVolumeID)
		ctx.Export("snapshotPolicyId", machine.SnapshotPolicyID)
		ctx.Export("dataSnapshots", pulumi.String(vm.DataSnapshotsAWS(owner, cfg.AwsRegion)))
		disks := cfg.RootVolumeGiB + cfg.DataVolumeGiB // both gp3
		out.MonthlyCostUSD, _ = vm.MonthlyCost("aws", cfg.InstanceType, cfg.Spot, disks)
		if _, err := budget.New(ctx, "budget", budget.Args{Owner: owner, MonthlyUSD: cfg.BudgetMonthlyUSD, Emails: cfg.BudgetEmails, EstimateUSD: out.MonthlyCostUSD}); err != nil {
			return nil, err
		}
		ctx.Export("securityGroupId", net.SecurityGroupID)
		ctx.Export("costEstimateBasis", pulumi.String(vm.CostNote("aws", cfg.InstanceType, cfg.Spot, disks)))
	case TargetGCP:
		net, err := network.NewGCP(ctx, "network", network.GCPArgs{
			Owner: owner, Project: cfg.GcpProject, Region: cfg.GcpRegion, SubnetCidr: cfg.SubnetCidr, AdminCidrs: cfg.AdminCidrs,
		})
		if err != nil {
			return nil, err
		}
		machine, err := vm.NewGCP(ctx, "vm", vm.GCPArgs{
			Owner: owner, Project: cfg.GcpProject, Region: cfg.GcpRegion, Zone: cfg.GcpZone,
			SubnetworkID: net.SubnetworkID, VMTag: net.VMTag,
			MachineType: cfg.MachineType, Spot: cfg.Preemptible, RootVolumeGiB: cfg.RootVolumeGiB, UbuntuRelease: cfg.UbuntuRelease,
			SSHUser: cfg.SSHUser, SSHPort: cfg.SSHPort, SSHPublicKey: cfg.SSHPublicKey, SSHPrivateKey: cfg.SSHPrivateKey,
			DataVolumeGiB: cfg.DataVolumeGiB, DataSnapshotID: cfg.DataSnapshotID, RetainData: cfg.RetainsData(),
			SnapshotRetentionDays: cfg.SnapshotRetentionDays,
		})
		if err != nil {
			return nil, err
		}
		host = machine.Host
		ctx.Export("dataDisk", machine.DataDisk)
		ctx.Export("dataSnapshots", pulumi.Sprintf("gcloud compute snapshots list --project %s --filter labels.%s=%s", cfg.GcpProject, vm.DataTag, owner.Prefix("data")))
		disks := cfg.RootVolumeGiB + cfg.DataVolumeGiB // both pd-balanced
		out.MonthlyCostUSD, _ = vm.MonthlyCost("gcp", cfg.MachineType, cfg.Preemptible, disks)
		ctx.Export("networkTag", pulumi.String(net.VMTag))
		ctx.Export("costEstimateBasis", pulumi.String(vm.CostNote("gcp", cfg.MachineType, cfg.Preemptible, disks)))
	case TargetSSH:
		host = vm.Existing(cfg.SSHHost, cfg.SSHPrivateIP, cfg.SSHUser, cfg.SSHPort, cfg.SSHPrivateKey)
		host.DataDir = cfg.DataDir
	}

	var imageHost *cluster.Cluster // the cluster a built image is side-loaded onto
	if cfg.NeedsSSH() {
		cl, err := cluster.New(ctx, "microk8s", cluster.Args{
			Host: host, Channel: cfg.MicroK8sChannel, Observability: cfg.Observability,
			PrometheusStorageGiB: cfg.PrometheusStorageGiB,
			ClusterIdentifier:    cluster.ClusterIdentifier(cfg.Project, cfg.Stack),
			DataDirs:             dataDirs(cfg),
		})
		if err != nil {
			return nil, err
		}
		imageHost = cl
		out.Provider, out.Kubeconfig, out.APIURL = cl.Provider, cl.Kubeconfig, cl.APIURL
		out.PublicIP = host.PublicIP
		out.SSHCommand = pulumi.Sprintf("ssh -p %d %s@%s", host.Port, host.User, host.PublicIP)
		out.AppURL = pulumi.Sprintf("http://%s%s", host.PublicIP, app.IngressPathPrefix)
	} else {
		p, err := kubernetes.NewProvider(ctx, "existing-cluster", &kubernetes.ProviderArgs{
			Kubeconfig: optional(cfg.Kubeconfig), // a path; empty means $KUBECONFIG or ~/.kube/config
			Context:    optional(cfg.KubeContext),
		})
		if err != nil {
			return nil, err
		}
		out.Provider = p
		out.PublicIP = pulumi.String("").ToStringOutput()
		out.SSHCommand = pulumi.String("").ToStringOutput()
		out.Kubeconfig = pulumi.ToSecret(pulumi.String("")).(pulumi.StringOutput)
		out.APIURL = pulumi.String("from the kubeconfig").ToStringOutput()
	}

	img, err := appImage(ctx, cfg, imageHost)
	if err != nil {
		return nil, err
	}
	// PostgreSQL in the host's data directory: the VM's data disk, or target ssh's dataDir.
	dataDir := ""
	if host.DataDir != "" {
		dataDir = host.DataDir + "/" + app.DataDir
	}
	var advertised pulumi.StringOutput // the API server's address, on a MicroK8s of ours
	if imageHost != nil {
		advertised = imageHost.APIAddress
	}
	g, err := workloads(ctx, cfg, out.Provider, img, dataDir, apiServer(cfg, advertised))
	if err != nil {
		return nil, err
	}
	if !cfg.NeedsSSH() {
		out.AppURL = proxyURL(g.ProxyService)
	}
	if cfg.Observability {
		out.Grafana = pulumi.String("kubectl -n observability port-forward svc/kube-prom-stack-grafana 3000:80, then http://localhost:3000 as admin; password: kubectl -n observability get secret kube-prom-stack-grafana -o jsonpath='{.data.admin-password}' | base64 -d").ToStringOutput()
	} else {
		out.Grafana = pulumi.String("observability is off for this stack (config key observability)").ToStringOutput()
	}

	ctx.Export("target", pulumi.String(cfg.Target))
	ctx.Export("publicIp", out.PublicIP)
	ctx.Export("sshCommand", out.SSHCommand)
	ctx.Export("kubeconfig", out.Kubeconfig)
	ctx.Export("kubernetesApiUrl", out.APIURL)
	ctx.Export("appUrl", out.AppURL)
	ctx.Export("grafana", out.Grafana)
	if out.MonthlyCostUSD > 0 {
		ctx.Export("estimatedMonthlyCostUsd", pulumi.Float64(out.MonthlyCostUSD))
	}
	return out, nil
}

// workloads declares the Kubernetes layer, the same for every target.
// dataDir is PostgreSQL's directory on the VM's data disk, "" without one.
// api is the Kubernetes API rule of Kong's controller (apiServer).
func workloads(ctx *pulumi.Context, cfg Config, provider *kubernetes.Provider, img AppImage, dataDir string, api []gateway.IPPorts) (*gateway.Gateway, error) {
	onCluster := pulumi.Provider(provider)
	g, err := gateway.New(ctx, "kong", gateway.Args{ServiceType: cfg.GatewayServiceType, Policy: gateway.Policy{
		Backends:    []gateway.Backend{{Namespace: app.Namespace, Pods: app.API.Selector(), Port: "http"}},
		APIServer:   api,
		MetricsFrom: observability.Namespace,
	}}, onCluster)
	if err != nil {
		return nil, err
	}
	a, err := app.New(ctx, "comments", app.Args{
		Image: img.Ref, Version: img.Version, PullPolicy: img.PullPolicy, PullSecret: img.pullSecret(), ImageReady: img.Ready,
		Replicas:           cfg.AppReplicas,
		RateLimitPerMinute: cfg.RateLimitPerMinute, DBPassword: cfg.DBPassword, DBStorageGiB: cfg.DBStorageGiB,
		DBAdminPassword: cfg.AdminPasswordOrNil(), DBReclaimPolicy: cfg.DBReclaimPolicy,
		DataDir:      dataDir,
		AwaitIngress: cfg.GatewayServiceType == "LoadBalancer",
		Gateway:      g,
	}, onCluster)
	if err != nil {
		return nil, err
	}
	if cfg.Observability {
		oa := observability.Args{DependsOn: []pulumi.Resource{a.Namespace, g.Namespace, a.Service, g.ProxyService}}
		if cfg.NeedsSSH() {
			oa.Alerts, oa.AlertmanagerSecret = alertReceiver(cfg), cluster.AlertmanagerSecret
		}
		if _, err := observability.New(ctx, "observability", oa, onCluster); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// apiServer is where Kong's controller reaches the Kubernetes API, as its
// NetworkPolicy sees it: after Calico's DNAT, the address the API server
// advertises (gateway.MicroK8sAPIServer). advertised is that address as
// the cluster records it (cluster.Cluster.APIAddress); MicroK8s sets no
// --advertise-address, so it is the address of the host's default route.
//
//   - ssh: advertised/32. Not sshPrivateIp: on a multi-homed host (a Vagrant
//     VM, NAT on the default route plus a host-only network) sshPrivateIp
//     is often not the default route's address, and a rule naming it
//     refuses the controller, which then crash-loops. sshPrivateIp stays
//     MetalLB's address only.
//   - aws, gcp: the stack's subnet. The VM has one interface in it, so the
//     advertised address is in it, and the subnet holds nothing else of
//     ours; unlike the found address it is known at preview, and it does
//     not go stale if the address changes while the steps' triggers do
//     not (a subnet change replaces the VM, which re-runs every step).
//   - kubeconfig: an existing cluster's address is unknown here.
func apiServer(cfg Config, advertised pulumi.StringOutput) []gateway.IPPorts {
	switch cfg.Target {
	case TargetAWS, TargetGCP:
		return gateway.MicroK8sAPIServer(pulumi.String(cfg.SubnetCidr))
	case TargetSSH:
		return gateway.MicroK8sAPIServer(pulumi.Sprintf("%s/32", advertised))
	}
	return gateway.AnyAPIServer()
}

// proxyURL is Kong's address on an existing cluster: its load-balancer
// address, or how to reach it without one.
func proxyURL(svc *corev1.Service) pulumi.StringOutput {
	return svc.Status.ApplyT(func(st *corev1.ServiceStatus) string {
		if st != nil && st.LoadBalancer != nil {
			for _, in := range st.LoadBalancer.Ingress {
				if in.Ip != nil {
					return "http://" + *in.Ip + app.IngressPathPrefix
				}
				if in.Hostname != nil {
					return "http://" + *in.Hostname + app.IngressPathPrefix
				}
			}
		}
		return "kubectl -n kong port-forward svc/kong-proxy 8080:80, then http://localhost:8080" + app.IngressPathPrefix
	}).(pulumi.StringOutput)
}

func optional(s string) pulumi.StringPtrInput {
	if s == "" {
		return nil
	}
	return pulumi.String(s)
}

// alertReceiver is where the addon's Alertmanager sends alerts, from the
// stack's alert keys (validated: at least one receiver).
func alertReceiver(cfg Config) *observability.Receiver {
	r := &observability.Receiver{
		Emails: cfg.AlertEmails, SMTPHost: cfg.AlertSMTPHost, SMTPFrom: cfg.AlertSMTPFrom, SMTPUsername: cfg.AlertSMTPUsername,
	}
	if cfg.hasSMTPPassword {
		r.SMTPPassword = cfg.AlertSMTPPassword
	}
	if cfg.alertWebhook != "" {
		r.WebhookURL = cfg.AlertWebhookURL
	}
	return r
}

// dataDirs are the directories on the data disk: PostgreSQL's, and
// Prometheus's with observability, each owned by its image's user
// (hostPath volumes ignore fsGroup).
func dataDirs(cfg Config) []cluster.DataDir {
	dirs := []cluster.DataDir{{Name: app.DataDir, UID: app.PostgresUID, GID: app.PostgresUID}}
	if cfg.Observability {
		dirs = append(dirs, cluster.PrometheusDataDir)
	}
	return dirs
}
