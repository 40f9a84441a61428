// Package vm declares the single machine MicroK8s runs on — an EC2 instance
// with an Elastic IP, a GCE instance with a static address, or an existing
// host — and describes it as a Host: what the cluster installer needs to
// reach it, independent of the cloud.
package vm

import (
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Host is a machine reachable over SSH.
type Host struct {
	PublicIP   pulumi.StringOutput // address SSH and the Kubernetes API are reached on
	PrivateIP  pulumi.StringOutput // the machine's own address (MetalLB's pool)
	User       string
	Port       int
	PrivateKey pulumi.StringOutput // secret
	// Ready lists what must exist before anything connects (the instance
	// and its address association).
	Ready []pulumi.Resource
	// MachineID is the cloud's id of the machine; empty for an existing
	// host. A new machine behind the same address (a reclaimed spot VM
	// re-created) has a new id, and the install steps run again.
	MachineID pulumi.StringOutput
	// DataDisk is the machine's own data disk (AWS, GCP), nil for an
	// existing host.
	DataDisk *DataDisk
	// DataDir is the host directory PostgreSQL's and Prometheus's data
	// live in: the data disk's mount point (DataMount), or on an existing
	// host its dataDir; "" for none.
	DataDir string
}

// DataMount is where a VM of ours mounts its data disk.
const DataMount = "/var/lib/platform-data"

// DataDisk is a cloud disk that outlives the machine: PostgreSQL's and
// Prometheus's data live on it, and a replaced machine gets it back.
type DataDisk struct {
	// Device is where the machine sees it: a /dev/disk/by-id path.
	Device pulumi.StringOutput
	// ID is the cloud's id of the disk: a new disk (a restore) re-runs
	// the mount step.
	ID pulumi.StringOutput
}

// DataDeviceAWS is the data volume's path on a Nitro instance: EBS volumes
// are NVMe devices whose serial is the volume id without its dash, and
// udev names them nvme-<model>_<serial> with the model's spaces as
// underscores (AWS EC2 User Guide, "Amazon EBS and NVMe": "The EBS volume
// ID is the serial number of the device"; systemd
// rules.d/60-persistent-storage.rules, the nvme by-id rule with
// string_escape=replace).
func DataDeviceAWS(volumeID string) string {
	return "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(volumeID, "-", "")
}

// Existing describes a host that is already there (target ssh).
func Existing(address, privateIP, user string, port int, key pulumi.StringOutput) Host {
	return Host{
		PublicIP:   pulumi.String(address).ToStringOutput(),
		PrivateIP:  pulumi.String(privateIP).ToStringOutput(),
		User:       user,
		Port:       port,
		PrivateKey: pulumi.ToSecret(key).(pulumi.StringOutput),
	}
}
