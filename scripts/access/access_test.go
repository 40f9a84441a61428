package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"microk8s-platform/infra/network"
	"microk8s-platform/internal/moto"
)

const runner = "203.0.113.7/32"

// awsGroup creates the security group as infra/network tags it, with the
// admin rule the program declares, and returns its id.
func awsGroup(t *testing.T, client *ec2.Client, stack string) string {
	t.Helper()
	ctx := context.Background()
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := client.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("vm-" + stack), Description: aws.String("vm"), VpcId: vpc.Vpc.VpcId,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{
			{Key: aws.String("automation"), Value: aws.String(network.AutomationTag)},
			{Key: aws.String("project"), Value: aws.String(project)},
			{Key: aws.String("stack"), Value: aws.String(stack)},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("198.51.100.0/24")}},
	}}}); err != nil {
		t.Fatal(err)
	}
	return *sg.GroupId
}

// ingress lists a group's ingress rules as "port cidr".
func ingress(t *testing.T, client *ec2.Client, sg string) []string {
	t.Helper()
	out, err := client.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, p := range out.SecurityGroups[0].IpPermissions {
		for _, r := range p.IpRanges {
			rules = append(rules, strings.Join([]string{aws.ToString(p.IpProtocol), strconv.Itoa(int(aws.ToInt32(p.FromPort))), aws.ToString(r.CidrIp)}, " "))
		}
		for _, r := range p.Ipv6Ranges {
			rules = append(rules, strings.Join([]string{aws.ToString(p.IpProtocol), strconv.Itoa(int(aws.ToInt32(p.FromPort))), aws.ToString(r.CidrIpv6)}, " "))
		}
	}
	slices.Sort(rules)
	return rules
}

// motoEC2 starts moto for the test and returns an EC2 client of it.
func motoEC2(t *testing.T) *ec2.Client {
	t.Helper()
	moto.Start(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ec2.NewFromConfig(cfg)
}

func run2(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), args, &out, &out)
	return code, out.String()
}

func TestAWSOpenAddsExactlyTheRunnerAndCloseRemovesIt(t *testing.T) {
	client := motoEC2(t)
	sg := awsGroup(t, client, "dev")
	other := awsGroup(t, client, "prod")
	before, otherBefore := ingress(t, client, sg), ingress(t, client, other)

	for i := range 2 { // opening twice is harmless
		if code, out := run2(t, "open", "--stack", "dev", "--cidr", runner); code != 0 {
			t.Fatalf("open #%d: exit %d\n%s", i+1, code, out)
		}
		want := slices.Sorted(slices.Values(append(slices.Clone(before), "tcp 22 "+runner, "tcp 16443 "+runner)))
		if got := ingress(t, client, sg); !slices.Equal(got, want) {
			t.Fatalf("after open #%d: rules %v, want %v", i+1, got, want)
		}
	}
	if got := ingress(t, client, other); !slices.Equal(got, otherBefore) {
		t.Errorf("open touched another stack's group: %v", got)
	}
	for i := range 2 { // closing twice is harmless
		if code, out := run2(t, "close", "--stack", "dev", "--cidr", runner); code != 0 {
			t.Fatalf("close #%d: exit %d\n%s", i+1, code, out)
		}
		if got := ingress(t, client, sg); !slices.Equal(got, before) {
			t.Fatalf("after close #%d: rules %v, want %v", i+1, got, before)
		}
	}
	// An explicit group id works without the tag lookup.
	if code, out := run2(t, "open", "--stack", "x", "--security-group", other, "--cidr", "2001:db8::7"); code != 0 {
		t.Fatalf("open by id: %d\n%s", code, out)
	}
	if got := ingress(t, client, other); !slices.Contains(got, "tcp 16443 2001:db8::7/128") {
		t.Errorf("IPv6 rule missing: %v", got)
	}
	if code, out := run2(t, "open", "--stack", "staging", "--cidr", runner); code != exitNotDeployed || !strings.Contains(out, "no security group tagged") {
		t.Errorf("undeployed stack: exit %d\n%s", code, out)
	}
	if code, out := run2(t, "close", "--stack", "staging", "--cidr", runner, "--missing-ok"); code != 0 {
		t.Errorf("undeployed stack with --missing-ok: exit %d\n%s", code, out)
	}
}

// One port already open to the runner (a step that opened 22 only, or a
// rule someone added by hand) must not make open skip the other. EC2
// answers an AuthorizeSecurityGroupIngress request holding a rule that
// exists with InvalidPermission.Duplicate ("the specified rule ... already
// exists", EC2 API error codes); moto 5.2.1 (ec2/models/security_groups.py,
// authorize_security_group_ingress) raises it at the first existing rule,
// before adding the rules after it. So each port is its own call.
func TestAWSOpenOpensEachPortOnItsOwn(t *testing.T) {
	client := motoEC2(t)
	sg := awsGroup(t, client, "dev")
	before := ingress(t, client, sg)
	now := time.Now()
	if _, err := client.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: permissions(runner, &now)[:1]}); err != nil {
		t.Fatal(err)
	}
	if code, out := run2(t, "open", "--stack", "dev", "--cidr", runner); code != 0 {
		t.Fatalf("open: exit %d\n%s", code, out)
	} else if !strings.Contains(out, "22 already open") || !strings.Contains(out, "opened 16443") {
		t.Errorf("open reports:\n%s", out)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(before), "tcp 22 "+runner, "tcp 16443 "+runner)))
	if got := ingress(t, client, sg); !slices.Equal(got, want) {
		t.Fatalf("with 22 open already, open left rules %v, want %v", got, want)
	}
}

func TestOnlySingleAddressesAreOpened(t *testing.T) {
	for _, cidr := range []string{"0.0.0.0/0", "203.0.113.0/24", "::/0", "203.0.113.7/31", "nonsense", "203.0.113.7/24"} {
		if code, out := run2(t, "open", "--stack", "dev", "--cidr", cidr); code != 2 {
			t.Errorf("--cidr %s accepted (exit %d)\n%s", cidr, code, out)
		}
	}
	for in, want := range map[string]string{"203.0.113.7": "203.0.113.7/32", "203.0.113.7/32": "203.0.113.7/32", "2001:db8::1": "2001:db8::1/128"} {
		if got, err := singleHost(in); err != nil || got != want {
			t.Errorf("singleHost(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if code, _ := run2(t, "open"); code != 2 {
		t.Error("open without --stack accepted")
	}
}

// A stand-in gcloud keeps the firewall rules as files, answering like the
// real one when a rule exists already or is missing.
const fakeGcloud = `#!/bin/sh
echo "$@" >> "$GCLOUD_STATE/calls"
name=$4
case "$3" in
create) if [ -e "$GCLOUD_STATE/$name" ]; then echo "ERROR: (gcloud.compute.firewall-rules.create) Could not fetch resource: The resource '$name' already exists" >&2; exit 1; fi
        echo "$@" > "$GCLOUD_STATE/$name" ;;
delete) if [ ! -e "$GCLOUD_STATE/$name" ]; then echo "ERROR: (gcloud.compute.firewall-rules.delete) Could not fetch resource: The resource '$name' was not found" >&2; exit 1; fi
        rm "$GCLOUD_STATE/$name" ;;
esac
`

func TestGCPOpenCreatesOneRuleAndCloseDeletesIt(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	os.WriteFile(filepath.Join(dir, "gcloud"), []byte(fakeGcloud), 0o755)
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	t.Setenv("GCLOUD_STATE", state)

	rules := func() []string {
		var out []string
		entries, _ := os.ReadDir(state)
		for _, e := range entries {
			if e.Name() != "calls" {
				out = append(out, e.Name())
			}
		}
		return out
	}
	for i := range 2 {
		if code, out := run2(t, "open", "--cloud", "gcp", "--stack", "dev", "--gcp-project", "acme", "--cidr", runner); code != 0 {
			t.Fatalf("open #%d: %d\n%s", i+1, code, out)
		}
	}
	got := rules()
	if len(got) != 1 || got[0] != "microk8s-platform-dev-access-203-0-113-7-32" {
		t.Fatalf("rules after open: %v", got)
	}
	b, _ := os.ReadFile(filepath.Join(state, got[0]))
	for _, want := range []string{"--network microk8s-platform-dev-net", "--allow tcp:22,tcp:16443", "--source-ranges " + runner, "--target-tags " + network.AutomationTag, "--project acme"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("gcloud create lacks %q: %s", want, b)
		}
	}
	for i := range 2 {
		if code, out := run2(t, "close", "--cloud", "gcp", "--stack", "dev", "--gcp-project", "acme", "--cidr", runner); code != 0 {
			t.Fatalf("close #%d: %d\n%s", i+1, code, out)
		}
	}
	if got := rules(); len(got) != 0 {
		t.Fatalf("rules after close: %v", got)
	}
	if name := gcpRuleName("a-very-long-stack-name-for-testing", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff/128"); len(name) > 63 || strings.HasSuffix(name, "-") {
		t.Errorf("rule name %q is not a valid GCP name", name)
	}
}

// The workflows look the runner's address up with access cidr: an IPv4
// /32, asked over IPv4 (the VM is reached over IPv4; an IPv6 address would
// open nothing the runner uses), and never an answer that is not one.
func TestCIDRIsTheCallersIPv4AsASlash32(t *testing.T) {
	answer := "203.0.113.7\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, answer) }))
	defer srv.Close()
	if code, out := run2(t, "cidr", "--lookup-url", srv.URL); code != 0 || out != "203.0.113.7/32\n" {
		t.Errorf("cidr: exit %d, %q", code, out)
	}
	for _, bad := range []string{"2001:db8::7\n", "<html>busy</html>", ""} {
		answer = bad
		if code, out := run2(t, "cidr", "--lookup-url", srv.URL); code != 1 || !strings.Contains(out, "not an IPv4 address") {
			t.Errorf("answer %q: exit %d, %q", bad, code, out)
		}
	}
}

// describedRule adds an ingress rule with a description, as another job
// or an administrator would have.
func describedRule(t *testing.T, client *ec2.Client, sg string, port int32, cidr, desc string) {
	t.Helper()
	if _, err := client.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		IpRanges: []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String(desc)}},
	}}}); err != nil {
		t.Fatal(err)
	}
}

// A runner that dies before its close step leaves its rules open. sweep
// (run by the drift check, and by every open first) revokes this helper's
// rules older than the longest job, and nothing else: not a job's rule
// still in use, not the program's own rules.
func TestSweepClosesOnlyWhatDeadRunnersLeftOpen(t *testing.T) {
	client := motoEC2(t)
	sg := awsGroup(t, client, "dev")
	at := func(d time.Duration) string {
		return ruleDescription + openedAt + time.Now().Add(-d).UTC().Format(time.RFC3339)
	}
	describedRule(t, client, sg, 22, "192.0.2.1/32", at(3*time.Hour))    // a dead runner's
	describedRule(t, client, sg, 16443, "192.0.2.1/32", at(3*time.Hour)) // the same runner's other port
	describedRule(t, client, sg, 22, "192.0.2.2/32", ruleDescription)    // from before rules carried a time
	describedRule(t, client, sg, 22, "192.0.2.3/32", at(10*time.Minute)) // a job running now
	describedRule(t, client, sg, 80, "0.0.0.0/0", "Kong on 80")          // the program's
	want := []string{"tcp 22 192.0.2.3/32", "tcp 22 198.51.100.0/24", "tcp 80 0.0.0.0/0"}

	if code, out := run2(t, "sweep", "--stack", "dev"); code != 0 || strings.Count(out, "closing") != 3 {
		t.Fatalf("sweep: exit %d\n%s", code, out)
	}
	if got := ingress(t, client, sg); !slices.Equal(got, want) {
		t.Fatalf("after sweep: %v, want %v", got, want)
	}
	if code, out := run2(t, "sweep", "--stack", "dev"); code != 0 || strings.Contains(out, "closing") {
		t.Errorf("second sweep: exit %d\n%s", code, out)
	}
	// open sweeps before it opens.
	describedRule(t, client, sg, 22, "192.0.2.4/32", at(2*time.Hour))
	if code, out := run2(t, "open", "--stack", "dev", "--cidr", runner); code != 0 || !strings.Contains(out, "closing 22 to 192.0.2.4/32") {
		t.Fatalf("open: exit %d\n%s", code, out)
	}
	want = slices.Sorted(slices.Values(append(want, "tcp 22 "+runner, "tcp 16443 "+runner)))
	if got := ingress(t, client, sg); !slices.Equal(got, want) {
		t.Errorf("after open: %v, want %v", got, want)
	}
	if code, out := run2(t, "sweep", "--stack", "staging", "--missing-ok"); code != 0 {
		t.Errorf("sweep of an undeployed stack with --missing-ok: exit %d\n%s", code, out)
	}
}
