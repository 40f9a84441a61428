package network

import (
	"fmt"
	"slices"

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
	AdminCidrs []string // IPv4 and IPv6 networks; each family gets its own rules
	// InstanceType is the VM's type: the subnet goes to a zone that offers it.
	InstanceType string
}

// AWS is the VPC, its public /24 subnet, internet gateway, route table and
// security group.
type AWS struct {
	pulumi.ResourceState
	VpcID            pulumi.IDOutput
	SubnetID         pulumi.IDOutput
	SecurityGroupID  pulumi.IDOutput
	AvailabilityZone pulumi.StringOutput
	// Internet is what makes the subnet reach the internet: the gateway and
	// the subnet's association with the route table that points at it. An
	// Elastic IP association and anything that connects to the VM from
	// outside must depend on these (see ZoneFor and the vm package).
	Internet []pulumi.Resource
}

// Filters of the zone lookup.
const (
	// OptInNotRequired is the opt-in-status of a region's ordinary
	// Availability Zones; Local Zones and Wavelength Zones are
	// "opted-in"/"not-opted-in" and are returned by the same API once an
	// account opts in (pulumi-aws v6.83.4 getAvailabilityZones.go, example
	// "Only Availability Zones (no Local Zones)").
	OptInNotRequired = "opt-in-not-required"
	// OfferingsByZone asks DescribeInstanceTypeOfferings for zone names
	// (pulumi-aws v6.83.4 ec2/getInstanceTypeOfferings.go: locationType
	// "availability-zone"; the default "region" says nothing about zones).
	OfferingsByZone = "availability-zone"
)

// ZoneFor picks the subnet's zone: the first, by name, of the zones that
// need no opt-in and offer instanceType. Not every zone offers every type
// (RunInstances refuses one that is not offered there with "Unsupported"),
// and the first zone listed may be a Local Zone the account opted in to.
func ZoneFor(zones, offered []string, instanceType string) (string, error) {
	ok := map[string]bool{}
	for _, z := range offered {
		ok[z] = true
	}
	var both []string
	for _, z := range zones {
		if ok[z] {
			both = append(both, z)
		}
	}
	if len(both) == 0 {
		return "", fmt.Errorf("network: no availability zone of this region (%v) offers instance type %s (offered in %v); pick another instanceType or region", zones, instanceType, offered)
	}
	slices.Sort(both)
	return both[0], nil
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
	// One zone: available, no opt-in, and offering the instance type.
	zones, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{
		State:   pulumi.StringRef("available"),
		Filters: []aws.GetAvailabilityZonesFilter{{Name: "opt-in-status", Values: []string{OptInNotRequired}}},
	}, pulumi.Parent(n))
	if err != nil {
		return nil, fmt.Errorf("network: list availability zones: %w", err)
	}
	offers, err := ec2.GetInstanceTypeOfferings(ctx, &ec2.GetInstanceTypeOfferingsArgs{
		LocationType: pulumi.StringRef(OfferingsByZone),
		Filters:      []ec2.GetInstanceTypeOfferingsFilter{{Name: "instance-type", Values: []string{args.InstanceType}}},
	}, pulumi.Parent(n))
	if err != nil {
		return nil, fmt.Errorf("network: list the zones offering %s: %w", args.InstanceType, err)
	}
	az, err := ZoneFor(zones.Names, offers.Locations, args.InstanceType)
	if err != nil {
		return nil, err
	}
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
	rta, err := ec2.NewRouteTableAssociation(ctx, name, &ec2.RouteTableAssociationArgs{
		SubnetId:     subnet.ID(),
		RouteTableId: rt.ID(),
	}, p)
	if err != nil {
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
		a := &vpc.SecurityGroupIngressRuleArgs{
			SecurityGroupId: sg.ID(),
			IpProtocol:      pulumi.String("tcp"),
			FromPort:        pulumi.Int(port),
			ToPort:          pulumi.Int(port),
			Description:     pulumi.String(desc),
			Tags:            o.AWS(ruleName),
		}
		// "The source IPv4 CIDR range" / "The source IPv6 CIDR range"
		// (pulumi-aws v6.83.4 vpc/securityGroupIngressRule.go): one field
		// per family.
		if IsIPv6(cidr) {
			a.CidrIpv6 = pulumi.String(cidr)
		} else {
			a.CidrIpv4 = pulumi.String(cidr)
		}
		_, err := vpc.NewSecurityGroupIngressRule(ctx, name+"-"+ruleName, a, p)
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
	n.Internet = []pulumi.Resource{igw, rta}
	n.AvailabilityZone = pulumi.String(az).ToStringOutput()
	return n, ctx.RegisterResourceOutputs(n, pulumi.Map{
		"vpcId": v.ID(), "subnetId": subnet.ID(), "securityGroupId": sg.ID(),
	})
}
