package vm

import (
	"fmt"

	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/network"
	"microk8s-platform/infra/tags"
)

// GCPImages are the Ubuntu LTS image families (project ubuntu-os-cloud).
var GCPImages = map[string]string{
	"22.04": "ubuntu-os-cloud/ubuntu-2204-lts",
	"24.04": "ubuntu-os-cloud/ubuntu-2404-lts-amd64",
}

// GCPArgs configure the GCE instance.
type GCPArgs struct {
	Owner         tags.Owner
	Project       string
	Region, Zone  string
	SubnetworkID  pulumi.IDOutput
	VMTag         string
	MachineType   string
	Spot          bool
	RootVolumeGiB int
	UbuntuRelease string
	SSHUser       string
	SSHPort       int
	SSHPublicKey  string
	SSHPrivateKey pulumi.StringOutput
}

// GCP is the instance and its static external address.
type GCP struct {
	pulumi.ResourceState
	InstanceID pulumi.IDOutput
	Host       Host
}

// NewGCP declares the VM.
func NewGCP(ctx *pulumi.Context, name string, args GCPArgs, opts ...pulumi.ResourceOption) (*GCP, error) {
	v := &GCP{}
	if err := ctx.RegisterComponentResource("microk8s-platform:vm:GCP", name, v, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(v)
	o := args.Owner
	image, ok := GCPImages[args.UbuntuRelease]
	if !ok {
		return nil, fmt.Errorf("vm: no GCE image family for Ubuntu %s", args.UbuntuRelease)
	}

	addr, err := compute.NewAddress(ctx, name, &compute.AddressArgs{
		Name:        pulumi.String(o.Prefix("ip")),
		Project:     pulumi.String(args.Project),
		Region:      pulumi.String(args.Region),
		AddressType: pulumi.String("EXTERNAL"),
		NetworkTier: pulumi.String("PREMIUM"),
		Labels:      o.GCP(),
	}, p)
	if err != nil {
		return nil, err
	}

	sched := &compute.InstanceSchedulingArgs{
		AutomaticRestart:  pulumi.Bool(true),
		OnHostMaintenance: pulumi.String("MIGRATE"),
	}
	if args.Spot {
		sched = &compute.InstanceSchedulingArgs{
			ProvisioningModel:         pulumi.String("SPOT"),
			Preemptible:               pulumi.Bool(true),
			AutomaticRestart:          pulumi.Bool(false),
			OnHostMaintenance:         pulumi.String("TERMINATE"),
			InstanceTerminationAction: pulumi.String("STOP"), // keep the disk
		}
	}
	inst, err := compute.NewInstance(ctx, name, &compute.InstanceArgs{
		Name:        pulumi.String(o.Prefix("vm")),
		Project:     pulumi.String(args.Project),
		Zone:        pulumi.String(args.Zone),
		MachineType: pulumi.String(args.MachineType),
		BootDisk: &compute.InstanceBootDiskArgs{
			AutoDelete: pulumi.Bool(true),
			InitializeParams: &compute.InstanceBootDiskInitializeParamsArgs{
				Image:  pulumi.String(image),
				Size:   pulumi.Int(args.RootVolumeGiB),
				Type:   pulumi.String("pd-balanced"),
				Labels: o.GCP(),
			},
		},
		NetworkInterfaces: compute.InstanceNetworkInterfaceArray{&compute.InstanceNetworkInterfaceArgs{
			Subnetwork: args.SubnetworkID,
			AccessConfigs: compute.InstanceNetworkInterfaceAccessConfigArray{&compute.InstanceNetworkInterfaceAccessConfigArgs{
				NatIp: addr.Address,
			}},
		}},
		Metadata: pulumi.StringMap{
			"ssh-keys":               pulumi.String(args.SSHUser + ":" + args.SSHPublicKey),
			"block-project-ssh-keys": pulumi.String("true"),
			"enable-oslogin":         pulumi.String("FALSE"),
		},
		ShieldedInstanceConfig: &compute.InstanceShieldedInstanceConfigArgs{
			EnableSecureBoot:          pulumi.Bool(true),
			EnableVtpm:                pulumi.Bool(true),
			EnableIntegrityMonitoring: pulumi.Bool(true),
		},
		Scheduling:             sched,
		Tags:                   pulumi.StringArray{pulumi.String(args.VMTag), pulumi.String(network.AutomationTag)},
		Labels:                 o.GCP(),
		AllowStoppingForUpdate: pulumi.Bool(true),
	}, p, pulumi.IgnoreChanges([]string{"bootDisk.initializeParams.image"}))
	if err != nil {
		return nil, err
	}
	private := inst.NetworkInterfaces.Index(pulumi.Int(0)).NetworkIp().Elem()
	v.InstanceID = inst.ID()
	v.Host = Host{
		PublicIP:   addr.Address,
		PrivateIP:  private,
		User:       args.SSHUser,
		Port:       args.SSHPort,
		PrivateKey: pulumi.ToSecret(args.SSHPrivateKey).(pulumi.StringOutput),
		Ready:      []pulumi.Resource{inst, addr},
	}
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{"instanceId": inst.ID(), "publicIp": addr.Address, "privateIp": private})
}
