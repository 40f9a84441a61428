package vm

import (
	"fmt"
	"regexp"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
)

// CanonicalOwnerID is the AWS account that publishes official Ubuntu AMIs.
const CanonicalOwnerID = "099720109477"

// ubuntuAMIPatterns are the pinned AMI name patterns per Ubuntu LTS release.
var ubuntuAMIPatterns = map[string]string{
	"22.04": "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-%s-server-*",
	"24.04": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-%s-server-*",
}

// Graviton families (t4g, m7g, c7gd, ...) run arm64 images.
var armFamily = regexp.MustCompile(`^[a-z]+[0-9]+[a-z]*g[a-z]*\.`)

// AMIName returns the AMI name pattern for release on instanceType.
func AMIName(release, instanceType string) (string, error) {
	p, ok := ubuntuAMIPatterns[release]
	if !ok {
		return "", fmt.Errorf("vm: no AMI pattern for Ubuntu %s", release)
	}
	arch := "amd64"
	if armFamily.MatchString(instanceType) {
		arch = "arm64"
	}
	return fmt.Sprintf(p, arch), nil
}

// AWSArgs configure the EC2 instance.
type AWSArgs struct {
	Owner           tags.Owner
	SubnetID        pulumi.IDOutput
	SecurityGroupID pulumi.IDOutput
	InstanceType    string
	Spot            bool
	RootVolumeGiB   int
	UbuntuRelease   string
	SSHUser         string
	SSHPort         int
	SSHPublicKey    string
	SSHPrivateKey   pulumi.StringOutput
	// Internet is the network's internet gateway and route-table
	// association (network.AWS.Internet). The Elastic IP association and
	// the SSH steps wait for them: "EIP may require IGW to exist prior to
	// association. Use dependsOn to set an explicit dependency on the IGW"
	// (pulumi-aws v6.83.4 ec2/eip.go), and until the subnet's route table
	// is associated, its default route does not apply and the VM's
	// address is not reachable.
	Internet []pulumi.Resource
	// The data disk (datadisk.go): in the subnet's zone, DataVolumeGiB
	// large, made from DataSnapshotID when set (a restore), and with
	// RetainData kept by destroy and protected.
	AvailabilityZone pulumi.StringOutput
	DataVolumeGiB    int
	DataSnapshotID   string
	RetainData       bool
	// SnapshotRetentionDays is how long each daily snapshot is kept.
	SnapshotRetentionDays int
}

// SpotOptions are the dev VM's spot settings: a one-time request whose
// instance terminates when EC2 interrupts it.
//
// Not persistent: a persistent request outlives the instance. Deleting the
// instance (pulumi destroy, or a replacement) leaves the request open, and
// EC2 launches a new instance for it outside the stack, in the stack's
// subnet and security group, which then cannot be deleted either
// (hashicorp/terraform-provider-aws#38142, "aws_instance
// instance_market_options: Persistent type creates untracked resource",
// against the provider pulumi-aws v6 wraps). And stop/hibernate need a
// persistent request: "Persistent Spot Instance requests are only supported
// when the instance interruption behavior is either hibernate or stop. The
// default is one-time." (pulumi-aws v6.83.4 ec2/pulumiTypes.go,
// InstanceInstanceMarketOptionsSpotOptions). So one-time + terminate is the
// only shape with nothing left behind.
//
// What a reclaim does: EC2 terminates the instance; the root volume has
// deleteOnTermination, so it (the cluster) is gone, while the data volume
// (PostgreSQL's and Prometheus's data, datadisk.go) is released and stays;
// the Elastic IP stays allocated, unassociated. The provider's read treats a
// terminated instance as deleted (terraform-provider-aws
// internal/service/ec2 findInstanceByID: state terminated -> NotFound,
// "removing from state"), so the next `pulumi up --refresh` creates a new
// instance, re-associates the address, attaches the data volume to it and,
// because the instance id is in the install steps' triggers, installs
// MicroK8s and the platform again on a fresh root disk over the old data.
func SpotOptions() *ec2.InstanceInstanceMarketOptionsSpotOptionsArgs {
	return &ec2.InstanceInstanceMarketOptionsSpotOptionsArgs{
		SpotInstanceType:             pulumi.String("one-time"),
		InstanceInterruptionBehavior: pulumi.String("terminate"),
	}
}

// AWS is the instance, its key pair and Elastic IP.
type AWS struct {
	pulumi.ResourceState
	InstanceID pulumi.IDOutput
	// DataVolumeID is the data disk's volume id.
	DataVolumeID pulumi.IDOutput
	// SnapshotPolicyID is the DLM policy that snapshots it (policy-…).
	SnapshotPolicyID pulumi.IDOutput
	AMI              string
	Host             Host
}

// NewAWS declares the VM.
func NewAWS(ctx *pulumi.Context, name string, args AWSArgs, opts ...pulumi.ResourceOption) (*AWS, error) {
	v := &AWS{}
	if err := ctx.RegisterComponentResource("microk8s-platform:vm:AWS", name, v, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(v)
	o := args.Owner

	pattern, err := AMIName(args.UbuntuRelease, args.InstanceType)
	if err != nil {
		return nil, err
	}
	ami, err := ec2.LookupAmi(ctx, &ec2.LookupAmiArgs{
		Owners:     []string{CanonicalOwnerID},
		MostRecent: pulumi.BoolRef(true),
		Filters: []ec2.GetAmiFilter{
			{Name: "name", Values: []string{pattern}},
			{Name: "virtualization-type", Values: []string{"hvm"}},
			{Name: "root-device-type", Values: []string{"ebs"}},
		},
	}, pulumi.Parent(v))
	if err != nil {
		return nil, fmt.Errorf("vm: look up the Ubuntu %s AMI (%s): %w", args.UbuntuRelease, pattern, err)
	}
	v.AMI = ami.Id

	key, err := ec2.NewKeyPair(ctx, name, &ec2.KeyPairArgs{
		KeyName:   pulumi.String(o.Prefix("key")),
		PublicKey: pulumi.String(args.SSHPublicKey),
		Tags:      o.AWS("key"),
	}, p)
	if err != nil {
		return nil, err
	}

	data, err := newAWSDataVolume(ctx, name, args, p)
	if err != nil {
		return nil, err
	}
	snapshots, err := awsSnapshotPolicy(ctx, name, args, p)
	if err != nil {
		return nil, err
	}

	instArgs := &ec2.InstanceArgs{
		Ami:                 pulumi.String(ami.Id),
		InstanceType:        pulumi.String(args.InstanceType),
		SubnetId:            args.SubnetID,
		VpcSecurityGroupIds: pulumi.StringArray{args.SecurityGroupID},
		KeyName:             key.KeyName,
		RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
			VolumeType:          pulumi.String("gp3"),
			VolumeSize:          pulumi.Int(args.RootVolumeGiB),
			Encrypted:           pulumi.Bool(true),
			DeleteOnTermination: pulumi.Bool(true),
			// Tagged here, not with the instance's volumeTags, which
			// would fight the data volume's own tags: "Do not use
			// volume_tags if you plan to manage block device tags outside
			// the aws_instance configuration, such as using tags in an
			// aws_ebs_volume resource attached via aws_volume_attachment"
			// (pulumi-aws v6.83.4 ec2/instance.go, volumeTags).
			Tags: o.AWS("vm-root"),
		},
		// IMDSv2 only, and one hop: pods on the node cannot reach it.
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		Tags: o.AWS("vm"),
		// The data volume's id, replacing the instance when it changes
		// (a restore): the new volume goes to a new VM, never under a
		// running cluster. A comment in an otherwise empty cloud-config.
		UserData:                data.userData,
		UserDataReplaceOnChange: pulumi.Bool(true),
	}
	if args.Spot {
		instArgs.InstanceMarketOptions = &ec2.InstanceInstanceMarketOptionsArgs{
			MarketType:  pulumi.String("spot"),
			SpotOptions: SpotOptions(),
		}
	}
	// A newer Ubuntu AMI must not replace a running cluster: the AMI is
	// read at creation only. Replaced, the old VM goes first
	// (DeleteBeforeReplace): terminating it releases the data volume for
	// the new one.
	inst, err := ec2.NewInstance(ctx, name, instArgs, p, pulumi.IgnoreChanges([]string{"ami"}), pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, err
	}
	attach, err := attachAWSDataVolume(ctx, name, inst, data, p)
	if err != nil {
		return nil, err
	}
	eip, err := ec2.NewEip(ctx, name, &ec2.EipArgs{
		Domain:   pulumi.String("vpc"),
		Instance: inst.ID(),
		Tags:     o.AWS("eip"),
	}, p, pulumi.DependsOn(args.Internet))
	if err != nil {
		return nil, err
	}

	v.InstanceID, v.DataVolumeID, v.SnapshotPolicyID = inst.ID(), data.volume.ID(), snapshots.ID()
	v.Host = Host{
		PublicIP:   eip.PublicIp,
		PrivateIP:  inst.PrivateIp,
		User:       args.SSHUser,
		Port:       args.SSHPort,
		PrivateKey: pulumi.ToSecret(args.SSHPrivateKey).(pulumi.StringOutput),
		Ready:      append([]pulumi.Resource{inst, eip, attach}, args.Internet...),
		MachineID:  inst.ID().ToStringOutput(),
		DataDir:    DataMount,
		DataDisk: &DataDisk{
			Device: data.volume.ID().ApplyT(func(id pulumi.ID) string { return DataDeviceAWS(string(id)) }).(pulumi.StringOutput),
			ID:     data.volume.ID().ToStringOutput(),
		},
	}
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{
		"instanceId": inst.ID(), "publicIp": eip.PublicIp, "privateIp": inst.PrivateIp, "dataVolumeId": data.volume.ID(),
		"snapshotPolicyId": snapshots.ID(),
	})
}
