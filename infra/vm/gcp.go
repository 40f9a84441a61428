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

// gcpZoneLetters are each Compute Engine region's zones (the letter after
// "<region>-"), from the table "Available regions and zones" of
// cloud.google.com/compute/docs/regions-zones. A zone is not always
// "<region>-a": europe-west1 has b, c, d and us-east1 b, c, d.
var gcpZoneLetters = map[string]string{
	"africa-south1":           "abc",
	"asia-east1":              "abc",
	"asia-east2":              "abc",
	"asia-northeast1":         "abc",
	"asia-northeast2":         "abc",
	"asia-northeast3":         "abc",
	"asia-south1":             "abc",
	"asia-south2":             "abc",
	"asia-southeast1":         "abc",
	"asia-southeast2":         "abc",
	"australia-southeast1":    "abc",
	"australia-southeast2":    "abc",
	"europe-central2":         "abc",
	"europe-north1":           "abc",
	"europe-north2":           "abc",
	"europe-southwest1":       "abc",
	"europe-west1":            "bcd",
	"europe-west2":            "abc",
	"europe-west3":            "abc",
	"europe-west4":            "abc",
	"europe-west6":            "abc",
	"europe-west8":            "abc",
	"europe-west9":            "abc",
	"europe-west10":           "abc",
	"europe-west12":           "abc",
	"me-central1":             "abc",
	"me-central2":             "abc",
	"me-west1":                "abc",
	"northamerica-northeast1": "abc",
	"northamerica-northeast2": "abc",
	"northamerica-south1":     "abc",
	"southamerica-east1":      "abc",
	"southamerica-west1":      "abc",
	"us-central1":             "abcf",
	"us-east1":                "bcd",
	"us-east4":                "abc",
	"us-east5":                "abc",
	"us-south1":               "abc",
	"us-west1":                "abc",
	"us-west2":                "abc",
	"us-west3":                "abc",
	"us-west4":                "abc",
}

// GCPZones lists region's zones; ok is false for a region not in the table.
func GCPZones(region string) (zones []string, ok bool) {
	letters, ok := gcpZoneLetters[region]
	for _, l := range letters {
		zones = append(zones, region+"-"+string(l))
	}
	return zones, ok
}

// DefaultGCPZone is the zone used when gcp:zone is not set: the region's
// first zone in the table. ok is false for a region not in it, and then
// gcp:zone is required.
func DefaultGCPZone(region string) (zone string, ok bool) {
	zones, ok := GCPZones(region)
	if !ok || len(zones) == 0 {
		return "", false
	}
	return zones[0], true
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
	// The data disk (datadisk.go), as on AWS: its size, a snapshot to
	// restore it from, and whether destroy keeps it.
	DataVolumeGiB  int
	DataSnapshotID string
	RetainData     bool
	// SnapshotRetentionDays is how long each daily snapshot is kept.
	SnapshotRetentionDays int
}

// GCP is the instance and its static external address.
type GCP struct {
	pulumi.ResourceState
	InstanceID pulumi.IDOutput
	// DataDisk is the data disk's name.
	DataDisk pulumi.StringOutput
	Host     Host
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
	disk, err := newGCPDataDisk(ctx, name, args, p)
	if err != nil {
		return nil, err
	}
	if _, err := gcpSnapshotSchedule(ctx, name, args, disk, p); err != nil {
		return nil, err
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
		// The data disk, inline: an attachedDisks entry has no autoDelete
		// (pulumi-gcp v9.6.0 InstanceAttachedDisk: deviceName, mode,
		// source, keys), so GCE's default for an attached disk holds and
		// deleting the VM keeps it.
		AttachedDisks: compute.InstanceAttachedDiskArray{&compute.InstanceAttachedDiskArgs{
			Source:     disk.SelfLink,
			DeviceName: pulumi.String(GCPDataDeviceName),
			Mode:       pulumi.String("READ_WRITE"),
		}},
		Scheduling:             sched,
		Tags:                   pulumi.StringArray{pulumi.String(args.VMTag), pulumi.String(network.AutomationTag)},
		Labels:                 o.GCP(),
		AllowStoppingForUpdate: pulumi.Bool(true),
	}, p, pulumi.IgnoreChanges([]string{"bootDisk.initializeParams.image"}),
		// A new data disk (a restore) means a new VM, never a disk swapped
		// under a running cluster; the old VM goes first (its name is
		// fixed, and it holds the disk).
		pulumi.ReplaceOnChanges([]string{"attachedDisks"}), pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}
	private := inst.NetworkInterfaces.Index(pulumi.Int(0)).NetworkIp().Elem()
	v.InstanceID, v.DataDisk = inst.ID(), disk.Name
	v.Host = Host{
		PublicIP:   addr.Address,
		PrivateIP:  private,
		User:       args.SSHUser,
		Port:       args.SSHPort,
		PrivateKey: pulumi.ToSecret(args.SSHPrivateKey).(pulumi.StringOutput),
		Ready:      []pulumi.Resource{inst, addr},
		// instanceId is the server-assigned number; the resource id
		// (projects/.../instances/<name>) stays the same for a new VM.
		MachineID: inst.InstanceId,
		DataDir:   DataMount,
		DataDisk: &DataDisk{
			Device: pulumi.String(GCPDataDevice).ToStringOutput(),
			// The server-assigned number: a disk re-created under the
			// same name is another disk.
			ID: disk.DiskId,
		},
	}
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{"instanceId": inst.ID(), "publicIp": addr.Address, "privateIp": private, "dataDisk": disk.Name})
}
