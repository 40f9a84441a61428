// Command access opens SSH (22) and the Kubernetes API (16443) of a
// platform VM to one address for as long as a deploy runs, and closes it
// again. Those ports are otherwise open only to the stack's adminCidrs,
// and a GitHub-hosted runner (or a laptop on a changing IP) is in none of
// them.
//
//	access open  --stack dev [--cloud aws|gcp] [--cidr 203.0.113.7/32]
//	access close --stack dev [--cloud aws|gcp] [--cidr 203.0.113.7/32]
//	access sweep --stack dev [--older-than 70m]
//	access cidr                      (this machine's public IPv4, as a /32)
//
// AWS: an ingress rule per port on the stack's security group (the one
// tagged automation=microk8s-platform-automation and stack=<stack>), with
// the caller's address as a /32. The program declares its own rules as
// separate resources, so `pulumi up` neither reports this rule as drift nor
// deletes it. GCP: a firewall rule on the stack's network targeting the VM's
// automation network tag, through gcloud.
//
// Without --cidr the caller's public IPv4 address is looked up
// (checkip.amazonaws.com, over IPv4: the VM is reached over IPv4, so an
// IPv6 rule would open nothing the runner uses). Each rule's description
// records when it was opened; sweep revokes the rules of ours older than
// the longest job (a runner that died before its close step), and open
// sweeps first.
// Each port is opened and closed on its own, so one port that is open
// already does not stop the other from opening. Opening twice and closing
// twice are both harmless, so a workflow can run close under `if: always()`. Exit 3 means the stack has no security group
// yet (first deploy: create the network, then open); --missing-ok turns
// that into success for jobs that only read.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"microk8s-platform/infra/network"
	"microk8s-platform/internal/repo"
)

const (
	project = repo.Project
	// ruleDescription marks the rules this helper adds; openedAt follows
	// it with the time the rule was opened (RFC 3339, UTC).
	ruleDescription = "temporary deploy access (scripts/access)"
	openedAt        = " opened "
	// maxJob is how long a rule may be needed: the longest job that opens
	// one (deploy, timeout-minutes 55) within the role's one-hour
	// session, plus margin. Older rules are a dead runner's.
	maxJob = 70 * time.Minute
)

// lookupURL answers with the caller's address (ACCESS_LOOKUP_URL
// overrides it, for tests on loopback).
var lookupURL = cmp.Or(os.Getenv("ACCESS_LOOKUP_URL"), "https://checkip.amazonaws.com")

const usage = `usage:
  access open|close --stack STACK [--cloud aws|gcp] [--cidr ADDRESS/32]
                    [--security-group sg-...]                  (aws; default: found by tags)
                    [--gcp-project P] [--gcp-network N]        (gcp; default network microk8s-platform-STACK-net)
  access sweep --stack STACK [--older-than 70m] [--security-group sg-...]   (aws)
  access cidr                                                  prints your public IPv4 address as a /32

Opens or closes SSH (22) and the Kubernetes API (16443) of the stack's VM
for one address. Without --cidr, your public IPv4 address is looked up.
sweep closes what a runner that died left open: rules of this helper
older than --older-than.

Exit codes: 0 done, 1 failed, 2 usage, 3 the stack has no security group
yet (--missing-ok makes that 0).
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// ports the helper opens: the admin-only ones.
var ports = network.AdminPorts

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || !slices.Contains([]string{"open", "close", "sweep", "cidr"}, args[0]) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	action := args[0]
	if action == "cidr" {
		fs := flag.NewFlagSet("access cidr", flag.ContinueOnError)
		fs.SetOutput(stderr)
		url := fs.String("lookup-url", lookupURL, "what answers with the caller's address")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		ip, err := publicIPv4(ctx, *url)
		if err != nil {
			fmt.Fprintf(stderr, "access cidr: finding this machine's public IPv4 address: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, ip+"/32")
		return 0
	}
	fs := flag.NewFlagSet("access "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack whose VM to open (dev, prod, ...)")
	cloud := fs.String("cloud", "aws", "aws or gcp")
	cidr := fs.String("cidr", os.Getenv("ACCESS_CIDR"), "address to open for, as a /32 (IPv4) or /128 (IPv6); default: your public IPv4")
	sg := fs.String("security-group", "", "aws: security group id (default: the stack's, found by its tags)")
	gcpProject := fs.String("gcp-project", os.Getenv("CLOUDSDK_CORE_PROJECT"), "gcp: project")
	gcpNetwork := fs.String("gcp-network", "", "gcp: network (default microk8s-platform-STACK-net)")
	missingOK := fs.Bool("missing-ok", false, "aws: succeed when the stack has no security group yet (nothing deployed to reach)")
	olderThan := fs.Duration("older-than", maxJob, "sweep: revoke this helper's rules opened longer ago than this")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *stack == "" {
		fmt.Fprintf(stderr, "access %s: --stack is required\n\n%s", action, usage)
		return 2
	}
	host := ""
	if action != "sweep" {
		if *cidr == "" {
			ip, err := publicIPv4(ctx, lookupURL)
			if err != nil {
				fmt.Fprintf(stderr, "access: finding your public IPv4 address: %v; pass --cidr\n", err)
				return 1
			}
			*cidr = ip + "/32"
		}
		var err error
		if host, err = singleHost(*cidr); err != nil {
			fmt.Fprintf(stderr, "access: --cidr %s: %v\n", *cidr, err)
			return 2
		}
	}

	var err error
	switch {
	case *cloud == "aws" && action == "sweep":
		err = awsSweep(ctx, *stack, *sg, *olderThan, time.Now(), stdout)
	case *cloud == "aws":
		err = awsAccess(ctx, action, *stack, *sg, host, stdout)
	case action == "sweep":
		err = errors.New("sweep is for aws: a GCP rule is named after its address and stack, and closing it by name is close")
	case *cloud == "gcp":
		netName := *gcpNetwork
		if netName == "" {
			netName = project + "-" + *stack + "-net"
		}
		err = gcpAccess(action, *stack, *gcpProject, netName, host, stdout)
	default:
		fmt.Fprintf(stderr, "access: --cloud %q: want aws or gcp\n", *cloud)
		return 2
	}
	if errors.Is(err, errNotDeployed) {
		if *missingOK {
			fmt.Fprintf(stdout, "access %s: %v; nothing to do\n", action, err)
			return 0
		}
		fmt.Fprintf(stderr, "access %s: %v\n", action, err)
		return exitNotDeployed
	}
	if err != nil {
		fmt.Fprintf(stderr, "access %s: %v\n", action, err)
		return 1
	}
	return 0
}

// errNotDeployed: the stack has no security group (yet).
var errNotDeployed = errors.New("stack not deployed")

// exitNotDeployed tells a workflow to create the network first.
const exitNotDeployed = 3

// singleHost accepts exactly one address: a /32, a /128, or a bare address.
func singleHost(s string) (string, error) {
	if !strings.Contains(s, "/") {
		ip := net.ParseIP(s)
		if ip == nil {
			return "", errors.New("not an address")
		}
		if ip.To4() != nil {
			return s + "/32", nil
		}
		return s + "/128", nil
	}
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return "", err
	}
	ones, bits := n.Mask.Size()
	if ones != bits || !ip.Equal(n.IP) {
		return "", fmt.Errorf("opens %d addresses; this helper opens exactly one (a /%d)", 1<<min(bits-ones, 62), bits)
	}
	return n.String(), nil
}

// publicIPv4 asks url for the caller's address over IPv4 only, and
// refuses any answer that is not an IPv4 address.
func publicIPv4(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return "", err
	}
	ip := strings.TrimSpace(string(b))
	if a := net.ParseIP(ip); a == nil || a.To4() == nil {
		return "", fmt.Errorf("%s answered %q, which is not an IPv4 address", url, ip)
	}
	return ip, nil
}

// permissions are the rules for host on every admin port, described as
// this helper's and opened at now (nil now: no description, for revoking,
// which matches rules by protocol, ports and range only).
func permissions(host string, now *time.Time) []types.IpPermission {
	var desc *string
	if now != nil {
		desc = aws.String(ruleDescription + openedAt + now.UTC().Format(time.RFC3339))
	}
	var out []types.IpPermission
	for _, p := range ports {
		perm := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(int32(p)), ToPort: aws.Int32(int32(p))}
		if strings.HasSuffix(host, "/128") {
			perm.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(host), Description: desc}}
		} else {
			perm.IpRanges = []types.IpRange{{CidrIp: aws.String(host), Description: desc}}
		}
		out = append(out, perm)
	}
	return out
}

// stackGroup is an EC2 client and the stack's security group: sg, or the
// one found by its tags.
func stackGroup(ctx context.Context, stack, sg string) (*ec2.Client, string, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("AWS configuration: %w", err)
	}
	client := ec2.NewFromConfig(cfg)
	if sg == "" {
		sg, err = findGroup(ctx, client, stack)
	}
	return client, sg, err
}

func awsAccess(ctx context.Context, action, stack, sg, host string, stdout io.Writer) error {
	client, sg, err := stackGroup(ctx, stack, sg)
	if err != nil {
		return err
	}
	if action == "open" {
		// A runner that died kept its rules: close those first.
		if err := sweepGroup(ctx, client, sg, maxJob, time.Now(), stdout); err != nil {
			return err
		}
		now := time.Now()
		// Port by port: EC2 rejects a whole AuthorizeSecurityGroupIngress
		// call with InvalidPermission.Duplicate when any one rule in it
		// exists already, so with both ports in one call an open 22 would
		// leave 16443 closed while looking like success.
		for _, perm := range permissions(host, &now) {
			_, err := client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{perm}})
			switch apiCode(err) {
			case "":
				fmt.Fprintf(stdout, "%s: opened %d to %s\n", sg, *perm.FromPort, host)
			case "InvalidPermission.Duplicate":
				fmt.Fprintf(stdout, "%s: %d already open to %s\n", sg, *perm.FromPort, host)
			default:
				return err
			}
		}
		return nil
	}
	// Revoke port by port, so a half-open state closes fully.
	for _, perm := range permissions(host, nil) {
		_, err := client.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{perm}})
		switch apiCode(err) {
		case "":
			fmt.Fprintf(stdout, "%s: closed %d to %s\n", sg, *perm.FromPort, host)
		case "InvalidPermission.NotFound":
			fmt.Fprintf(stdout, "%s: %d was not open to %s\n", sg, *perm.FromPort, host)
		default:
			return err
		}
	}
	return nil
}

func awsSweep(ctx context.Context, stack, sg string, olderThan time.Duration, now time.Time, stdout io.Writer) error {
	client, sg, err := stackGroup(ctx, stack, sg)
	if err != nil {
		return err
	}
	return sweepGroup(ctx, client, sg, olderThan, now, stdout)
}

// stale reports whether a rule's description is this helper's, opened
// before cutoff. A rule of this helper without a time is from before
// descriptions carried one, and is stale too.
func stale(desc string, cutoff time.Time) bool {
	if desc == ruleDescription {
		return true
	}
	at, ok := strings.CutPrefix(desc, ruleDescription+openedAt)
	if !ok {
		return false
	}
	t, err := time.Parse(time.RFC3339, at)
	return err == nil && t.Before(cutoff)
}

// sweepGroup revokes this helper's ingress rules on sg opened longer than
// olderThan before now, by rule id.
func sweepGroup(ctx context.Context, client *ec2.Client, sg string, olderThan time.Duration, now time.Time, stdout io.Writer) error {
	out, err := client.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{
		{Name: aws.String("group-id"), Values: []string{sg}},
	}})
	if err != nil {
		return fmt.Errorf("listing the rules of %s: %w", sg, err)
	}
	var ids []string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) && stale(aws.ToString(r.Description), now.Add(-olderThan)) {
			ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
			fmt.Fprintf(stdout, "%s: closing %d to %s, left open by a job that did not close it (%s)\n", sg,
				aws.ToInt32(r.FromPort), aws.ToString(r.CidrIpv4)+aws.ToString(r.CidrIpv6), aws.ToString(r.Description))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := client.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &sg, SecurityGroupRuleIds: ids}); err != nil {
		return fmt.Errorf("closing stale rules %v of %s: %w", ids, sg, err)
	}
	return nil
}

// findGroup finds the stack's security group by the tags infra/network sets.
func findGroup(ctx context.Context, client *ec2.Client, stack string) (string, error) {
	out, err := client.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + network.AutomationTagKey), Values: []string{network.AutomationTag}},
		{Name: aws.String("tag:project"), Values: []string{project}},
		{Name: aws.String("tag:stack"), Values: []string{stack}},
	}})
	if err != nil {
		return "", fmt.Errorf("looking up the security group of stack %s: %w", stack, err)
	}
	switch len(out.SecurityGroups) {
	case 1:
		return *out.SecurityGroups[0].GroupId, nil
	case 0:
		return "", fmt.Errorf("%w: no security group tagged automation=%s, project=%s, stack=%s in this account and region (pass --security-group from `pulumi stack output securityGroupId` if it has other tags)", errNotDeployed, network.AutomationTag, project, stack)
	}
	return "", fmt.Errorf("%d security groups carry the tags of stack %s; pass --security-group", len(out.SecurityGroups), stack)
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "error"
	}
	return ""
}

// gcpRuleName is the firewall rule for host: one per stack and address.
func gcpRuleName(stack, host string) string {
	r := strings.NewReplacer(".", "-", ":", "-", "/", "-")
	name := strings.ToLower(project + "-" + stack + "-access-" + r.Replace(host))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	return name
}

func gcpAccess(action, stack, gcpProject, netName, host string, stdout io.Writer) error {
	name := gcpRuleName(stack, host)
	args := []string{"compute", "firewall-rules"}
	if action == "open" {
		var allow []string
		for _, p := range ports {
			allow = append(allow, fmt.Sprintf("tcp:%d", p))
		}
		args = append(args, "create", name, "--network", netName, "--direction", "INGRESS",
			"--allow", strings.Join(allow, ","), "--source-ranges", host,
			"--target-tags", network.AutomationTag, "--description", ruleDescription, "--quiet")
	} else {
		args = append(args, "delete", name, "--quiet")
	}
	if gcpProject != "" {
		args = append(args, "--project", gcpProject)
	}
	out, err := exec.Command("gcloud", args...).CombinedOutput()
	msg := string(out)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "firewall rule %s: %sed for %s\n", name, map[string]string{"open": "creat", "close": "delet"}[action], host)
		return nil
	case action == "open" && strings.Contains(msg, "already exists"):
		fmt.Fprintf(stdout, "firewall rule %s already open for %s\n", name, host)
		return nil
	case action == "close" && (strings.Contains(msg, "was not found") || strings.Contains(msg, "notFound")):
		fmt.Fprintf(stdout, "firewall rule %s was not there\n", name)
		return nil
	}
	return fmt.Errorf("gcloud %s: %v\n%s", strings.Join(args, " "), err, msg)
}
