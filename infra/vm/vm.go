// Package vm declares the single machine MicroK8s runs on — an EC2 instance
// with an Elastic IP, a GCE instance with a static address, or an existing
// host — and describes it as a Host: what the cluster installer needs to
// reach it, independent of the cloud.
package vm

import "github.com/pulumi/pulumi/sdk/v3/go/pulumi"

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
