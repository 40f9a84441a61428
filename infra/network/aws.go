package network

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
)

// AWSArgs configure the AWS network.
type AWSArgs struct {
	Owner      tags.Owner
	VpcCidr    string
	SubnetCidr string
	AdminCidrs []string
}

// AWS is the VPC, its public /24 subnet, internet gateway, route table and
// security group.
type AWS struct {
	pulumi.ResourceState
	VpcID            pulumi.IDOutput
	SubnetID         pulumi.IDOutput
	SecurityGroupID  pulumi.IDOutput
	AvailabilityZone pulumi.StringOutput
}

// NewAWS declares the network.
func NewAWS(ctx *pulumi.Context, name string, args AWSArgs, opts ...pulumi.ResourceOption) (*AWS, error) {
	n := &AWS{}
	if err := ctx.RegisterComponentResource("microk8s-platform:network:AWS", name, n, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(n)
	o := args.Owner

	v, err := ec2.NewVpc(ctx, name, &ec2.VpcArgs{
		CidrBlock:          pulumi.String(args.VpcCidr),
		EnableDnsSupport:   pulumi.Bool(true),
		EnableDnsHostnames: pulumi.Bool(true),
		Tags:               o.AWS("vpc"),
	}, p)
	if err != nil {
		return nil, err
	}
	// The first zone the account offers; a single-VM platform needs one.
	zones, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")}, pulumi.Parent(n))
	if err != nil {
		return nil, fmt.Errorf("network: list availability zones: %w", err)
	}
	if len(zones.Names) == 0 {
		return nil, fmt.Errorf("network: the region offers no available zone")
	}
	az := zones.Names[0]
	subnet, err := ec2.NewSubnet(ctx, name, &ec2.SubnetArgs{
		VpcId:               v.ID(),
		CidrBlock:           pulumi.String(args.SubnetCidr),
		AvailabilityZone:    pulumi.String(az),
		MapPublicIpOnLaunch: pulumi.Bool(false), // the VM gets an Elastic IP instead
		Tags:                o.AWS("subnet"),
	}, p)
	if err != nil {
		return nil, err
	}
	igw, err := ec2.NewInternetGateway(ctx, name, &ec2.InternetGatewayArgs{
		VpcId: v.ID(),
		Tags:  o.AWS("igw"),
	}, p)
	if err != nil {
		return nil, err
	}
	rt, err := ec2.NewRouteTable(ctx, name, &ec2.RouteTableArgs{
		VpcId: v.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{
			CidrBlock: pulumi.String("0.0.0.0/0"),
			GatewayId: igw.ID(),
		}},
		Tags: o.AWS("public"),
	}, p)
	if err != nil {
		return nil, err
	}
	if _, err := ec2.NewRouteTableAssociation(ctx, name, &ec2.RouteTableAssociationArgs{
		SubnetId:     subnet.ID(),
		RouteTableId: rt.ID(),
	}, p); err != nil {
		return nil, err
	}

	// The group carries no inline rules: each rule below is its own resource.
	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{
		VpcId:       v.ID(),
		Description: pulumi.String("microk8s-platform VM: SSH and Kubernetes API from admin CIDRs, HTTP(S) from anywhere"),
		Tags:        tags.Merge(o.AWS("vm"), map[string]string{AutomationTagKey: AutomationTag}),
	}, p)
	if err != nil {
		return nil, err
	}
	rule := func(ruleName string, port int, cidr, desc string) error {
		_, err := vpc.NewSecurityGroupIngressRule(ctx, name+"-"+ruleName, &vpc.SecurityGroupIngressRuleArgs{
			SecurityGroupId: sg.ID(),
			IpProtocol:      pulumi.String("tcp"),
			FromPort:        pulumi.Int(port),
			ToPort:          pulumi.Int(port),
			CidrIpv4:        pulumi.String(cidr),
			Description:     pulumi.String(desc),
			Tags:            o.AWS(ruleName),
		}, p)
		return err
	}
	for i, cidr := range args.AdminCidrs {
		for _, port := range AdminPorts {
			if err := rule(fmt.Sprintf("admin-%d-%d", port, i), port, cidr, fmt.Sprintf("admin access to %d", port)); err != nil {
				return nil, err
			}
		}
	}
	for _, port := range PublicPorts {
		if err := rule(fmt.Sprintf("public-%d", port), port, "0.0.0.0/0", fmt.Sprintf("Kong on %d", port)); err != nil {
			return nil, err
		}
	}
	if _, err := vpc.NewSecurityGroupEgressRule(ctx, name+"-egress", &vpc.SecurityGroupEgressRuleArgs{
		SecurityGroupId: sg.ID(),
		IpProtocol:      pulumi.String("-1"),
		CidrIpv4:        pulumi.String("0.0.0.0/0"),
		Description:     pulumi.String("all egress (snap store, image registries)"),
		Tags:            o.AWS("egress"),
	}, p); err != nil {
		return nil, err
	}

	n.VpcID, n.SubnetID, n.SecurityGroupID = v.ID(), subnet.ID(), sg.ID()
	n.AvailabilityZone = pulumi.String(az).ToStringOutput()
	return n, ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId": v.ID(), "subnetId": subnet.ID(), "securityGroupId": sg.ID(),
	})
}
