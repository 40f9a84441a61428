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
}

// AWS is the instance, its key pair and Elastic IP.
type AWS struct {
	pulumi.ResourceState
	InstanceID pulumi.IDOutput
	AMI        string
	Host       Host
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
		},
		// IMDSv2 only, and one hop: pods on the node cannot reach it.
		MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
			HttpEndpoint:            pulumi.String("enabled"),
			HttpTokens:              pulumi.String("required"),
			HttpPutResponseHopLimit: pulumi.Int(1),
		},
		Tags:       o.AWS("vm"),
		VolumeTags: o.AWS("vm-root"),
	}
	if args.Spot {
		// Persistent spot with stop-on-interruption keeps the disk (and the
		// cluster on it) when AWS takes the capacity back.
		instArgs.InstanceMarketOptions = &ec2.InstanceInstanceMarketOptionsArgs{
			MarketType: pulumi.String("spot"),
			SpotOptions: &ec2.InstanceInstanceMarketOptionsSpotOptionsArgs{
				SpotInstanceType:             pulumi.String("persistent"),
				InstanceInterruptionBehavior: pulumi.String("stop"),
			},
		}
	}
	// A newer Ubuntu AMI must not replace a running cluster: the AMI is
	// read at creation only.
	inst, err := ec2.NewInstance(ctx, name, instArgs, p, pulumi.IgnoreChanges([]string{"ami"}))
	if err != nil {
		return nil, err
	}
	eip, err := ec2.NewEip(ctx, name, &ec2.EipArgs{
		Domain:   pulumi.String("vpc"),
		Instance: inst.ID(),
		Tags:     o.AWS("eip"),
	}, p)
	if err != nil {
		return nil, err
	}

	v.InstanceID = inst.ID()
	v.Host = Host{
		PublicIP:   eip.PublicIp,
		PrivateIP:  inst.PrivateIp,
		User:       args.SSHUser,
		Port:       args.SSHPort,
		PrivateKey: pulumi.ToSecret(args.SSHPrivateKey).(pulumi.StringOutput),
		Ready:      []pulumi.Resource{inst, eip},
	}
	return v, ctx.RegisterResourceOutputs(v, pulumi.Map{
		"instanceId": inst.ID(), "publicIp": eip.PublicIp, "privateIp": inst.PrivateIp,
	})
}
