package network

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
)

// GCPArgs configure the GCP network.
type GCPArgs struct {
	Owner      tags.Owner
	Project    string
	Region     string
	SubnetCidr string
	AdminCidrs []string
}

// GCP is a custom-mode network, its /24 subnetwork and the firewall rules.
type GCP struct {
	pulumi.ResourceState
	NetworkID    pulumi.IDOutput
	SubnetworkID pulumi.IDOutput
	// VMTag is the network tag the firewall rules target; the VM carries it.
	VMTag string
}

// NewGCP declares the network.
func NewGCP(ctx *pulumi.Context, name string, args GCPArgs, opts ...pulumi.ResourceOption) (*GCP, error) {
	n := &GCP{VMTag: args.Owner.Prefix("vm")}
	if err := ctx.RegisterComponentResource("microk8s-platform:network:GCP", name, n, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(n)
	o := args.Owner

	netw, err := compute.NewNetwork(ctx, name, &compute.NetworkArgs{
		Name:                  pulumi.String(o.Prefix("net")),
		Project:               pulumi.String(args.Project),
		AutoCreateSubnetworks: pulumi.Bool(false),
		RoutingMode:           pulumi.String("REGIONAL"),
		Description:           pulumi.String("microk8s-platform " + o.Stack),
	}, p)
	if err != nil {
		return nil, err
	}
	sub, err := compute.NewSubnetwork(ctx, name, &compute.SubnetworkArgs{
		Name:                  pulumi.String(o.Prefix("subnet")),
		Project:               pulumi.String(args.Project),
		Region:                pulumi.String(args.Region),
		Network:               netw.ID(),
		IpCidrRange:           pulumi.String(args.SubnetCidr),
		PrivateIpGoogleAccess: pulumi.Bool(true),
	}, p)
	if err != nil {
		return nil, err
	}
	firewall := func(ruleName, direction string, ports []int, ranges []string, desc string) error {
		allow := compute.FirewallAllowArgs{Protocol: pulumi.String("all")}
		if len(ports) > 0 {
			var ps pulumi.StringArray
			for _, port := range ports {
				ps = append(ps, pulumi.String(strconv.Itoa(port)))
			}
			allow = compute.FirewallAllowArgs{Protocol: pulumi.String("tcp"), Ports: ps}
		}
		a := &compute.FirewallArgs{
			Name:        pulumi.String(o.Prefix(ruleName)),
			Project:     pulumi.String(args.Project),
			Network:     netw.ID(),
			Direction:   pulumi.String(direction),
			Allows:      compute.FirewallAllowArray{allow},
			TargetTags:  pulumi.StringArray{pulumi.String(n.VMTag)},
			Description: pulumi.String(desc),
			Priority:    pulumi.Int(1000),
		}
		if direction == "INGRESS" {
			a.SourceRanges = pulumi.ToStringArray(ranges)
		} else {
			a.DestinationRanges = pulumi.ToStringArray(ranges)
		}
		_, err := compute.NewFirewall(ctx, name+"-"+ruleName, a, p)
		return err
	}
	// "A firewall rule can contain either IPv4 or IPv6 ranges, but not
	// both" (cloud.google.com/firewall/docs/using-firewalls, "Create VPC
	// firewall rules"): one admin rule per family. A rule is declared only
	// for a family that has ranges ("For INGRESS traffic, one of
	// sourceRanges, sourceTags or sourceServiceAccounts is required",
	// pulumi-gcp v9.6.0 compute/firewall.go).
	v4, v6 := SplitFamilies(args.AdminCidrs)
	if len(v4) > 0 {
		if err := firewall("admin", "INGRESS", AdminPorts, v4, fmt.Sprintf("SSH and Kubernetes API (%v) from admin CIDRs", AdminPorts)); err != nil {
			return nil, err
		}
	}
	if len(v6) > 0 {
		if err := firewall("admin-ipv6", "INGRESS", AdminPorts, v6, fmt.Sprintf("SSH and Kubernetes API (%v) from admin IPv6 CIDRs", AdminPorts)); err != nil {
			return nil, err
		}
	}
	if err := firewall("public", "INGRESS", PublicPorts, []string{"0.0.0.0/0"}, "Kong HTTP and HTTPS from anywhere"); err != nil {
		return nil, err
	}
	if err := firewall("egress", "EGRESS", nil, []string{"0.0.0.0/0"}, "all egress (snap store, image registries)"); err != nil {
		return nil, err
	}
	n.NetworkID, n.SubnetworkID = netw.ID(), sub.ID()
	return n, ctx.RegisterResourceOutputs(n, pulumi.Map{"networkId": netw.ID(), "subnetworkId": sub.ID()})
}
