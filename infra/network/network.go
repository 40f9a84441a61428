// Package network declares the platform's network on AWS and GCP: one VPC
// (or custom-mode network) with one /24 subnet, and the firewall policy
// shared by both clouds: SSH (22) and the Kubernetes API (16443) only from
// the admin CIDRs, HTTP and HTTPS (Kong) from anywhere, all egress. Admin
// CIDRs may be IPv4 or IPv6; each family gets rules of its own (AWS
// cidrIpv4/cidrIpv6, a GCP firewall rule per family, since GCP rules cannot
// mix them). The VM itself has an IPv4 address only.
//
// On AWS the subnet goes to a zone that needs no opt-in and offers the
// VM's instance type (ZoneFor), and Internet lists what a connection from
// outside must wait for: the gateway and the route-table association.
//
// Every rule is its own resource (AWS security-group rules, GCP firewall
// resources) rather than inline in the group: a rule someone adds outside
// Pulumi — the deploy workflow opening SSH to its runner for a few minutes —
// is then neither reported as drift nor deleted by the next `up`.
package network

import (
	"net"
	"strings"
)

// Ports of the policy.
const (
	SSHPort   = 22
	APIPort   = 16443 // MicroK8s' Kubernetes API server
	HTTPPort  = 80
	HTTPSPort = 443
)

// AdminPorts are reachable only from the admin CIDRs.
var AdminPorts = []int{SSHPort, APIPort}

// PublicPorts are reachable from anywhere.
var PublicPorts = []int{HTTPPort, HTTPSPort}

// AutomationTag marks the GCP network tag and AWS security group that the
// runner-access helper (scripts/access) adds its temporary rules to; on AWS
// it is the value of the tag AutomationTagKey, which the CI roles' policy
// also matches.
const (
	AutomationTag    = "microk8s-platform-automation"
	AutomationTagKey = "automation"
)

// IsIPv6 reports whether cidr is an IPv6 network ("2001:db8::/32"). An
// IPv4-mapped form ("::ffff:198.51.100.0/120") counts as IPv6: the clouds
// take it in their IPv6 fields, if at all.
func IsIPv6(cidr string) bool {
	ip, _, err := net.ParseCIDR(cidr)
	return err == nil && (ip.To4() == nil || strings.Contains(cidr, ":"))
}

// SplitFamilies splits cidrs into IPv4 and IPv6 networks, keeping order.
func SplitFamilies(cidrs []string) (v4, v6 []string) {
	for _, c := range cidrs {
		if IsIPv6(c) {
			v6 = append(v6, c)
		} else {
			v4 = append(v4, c)
		}
	}
	return v4, v6
}
