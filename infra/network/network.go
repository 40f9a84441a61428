// Package network declares the platform's network on AWS and GCP: one VPC
// (or custom-mode network) with one /24 subnet, and the firewall policy
// shared by both clouds: SSH (22) and the Kubernetes API (16443) only from
// the admin CIDRs, HTTP and HTTPS (Kong) from anywhere, all egress.
//
// Every rule is its own resource (AWS security-group rules, GCP firewall
// resources) rather than inline in the group: a rule someone adds outside
// Pulumi — the deploy workflow opening SSH to its runner for a few minutes —
// is then neither reported as drift nor deleted by the next `up`.
package network

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
