package backend

// What each CI role needs, derived from what the platform program declares:
// the program runs under mocks for each committed stack, and every AWS
// resource type and data source it uses is looked up in needs, a table of
// the API calls its create, read, update and delete make, each with the
// resources IAM authorises it against.
//
// Sources:
//   - Which resource types and condition keys an action is authorised
//     against: AWS Service Authorization Reference, "Actions, resources,
//     and condition keys for Amazon EC2"
//     (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html)
//     and "... for AWS Budget Service" (list_awsbudgetservice.html): e.g.
//     RunInstances on image, instance, key-pair, network-interface,
//     security-group, subnet, volume and spot-instances-request; CreateSubnet
//     on subnet and vpc; every Describe* on no resource type ("*");
//     budgets:CreateBudget, DeleteBudget, CreateNotification and
//     CreateSubscriber are authorised as budgets:ModifyBudget,
//     DescribeBudget as budgets:ViewBudget.
//   - Tag-on-create: a create call that tags also authorises ec2:CreateTags
//     with ec2:CreateAction set to the create action, and aws:RequestTag/*
//     apply to the new resource (EC2 User Guide, "Grant permission to tag
//     Amazon EC2 resources during creation").
//   - Which calls the provider makes: terraform-provider-aws (which
//     pulumi-aws v6.83.4 wraps), internal/service/ec2 and budgets: the VPC's
//     read also reads its default security group, main route table and
//     default network ACL; a security group's create revokes AWS's default
//     allow-all egress rule; subnet and security group deletes look for
//     network interfaces still using them; an instance's read reads its
//     attributes, credit specification (burstable types), type, root
//     volume and, for spot, its request; a type change stops and starts it.
//   - What the provider really calls: providercalls_test.go runs
//     terraform-provider-aws 5.100.0 over the program's resources against
//     moto and fails on any call, or any resource a call names, that this
//     table lacks. It found: the instance's read calls DescribeTags and
//     DescribeVpcs and its create DescribeImages; the AMI data source
//     calls GetInstanceUefiData; the Elastic IP's association names the
//     instance's network interface; deleting or changing a security
//     group rule names the rule.
//   - sts:GetCallerIdentity needs no permission (AWS STS API Reference,
//     GetCallerIdentity: "No permissions are required to perform this
//     operation"); aws:getRegion makes no call.

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"microk8s-platform/infra"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/network"
	"microk8s-platform/infra/vm"
)

// How a call touches a resource.
type kind int

const (
	created  kind = iota // made by the call and tagged in the same request
	untagged             // made by the call without tags of ours (an instance's network interface, its spot request)
	owned                // exists and carries the stack's tags
	anyRes               // no resource-level permissions: "*"
	image                // a public Ubuntu image of Canonical's
	budget               // the stack's budget
	passed               // the bootstrap's snapshot role, passed to DLM
)

// dlmPolicy is the touch type of a DLM lifecycle policy (ARN
// arn:aws:dlm:<region>:<account>:policy/<id>).
const dlmPolicy = "dlm-policy"

type touch struct {
	typ  string // EC2 resource type in the ARN (vpc, subnet, ...)
	kind kind
}

type call struct {
	op     string // create, read, update, delete
	action string
	on     []touch
}

func on(typ string, k kind) []touch { return []touch{{typ, k}} }

var everything = []touch{{"*", anyRes}}

func describe(op string, actions ...string) []call {
	var out []call
	for _, a := range actions {
		out = append(out, call{op, a, everything})
	}
	return out
}

// tagUpdates: changing the tags of an existing resource.
func tagUpdates(typ string) []call {
	return []call{{"update", "ec2:CreateTags", on(typ, owned)}, {"update", "ec2:DeleteTags", on(typ, owned)}}
}

func join(cs ...[]call) []call { return slices.Concat(cs...) }

// needs: Pulumi type token -> the calls of its lifecycle.
var needs = map[string][]call{
	"aws:ec2/vpc:Vpc": join([]call{
		{"create", "ec2:CreateVpc", on("vpc", created)},
		{"create", "ec2:ModifyVpcAttribute", on("vpc", owned)}, // enableDnsHostnames
		{"update", "ec2:ModifyVpcAttribute", on("vpc", owned)},
		{"delete", "ec2:DeleteVpc", on("vpc", owned)},
	}, describe("read", "ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:DescribeSecurityGroups",
		"ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls"), tagUpdates("vpc")),
	"aws:ec2/subnet:Subnet": join([]call{
		{"create", "ec2:CreateSubnet", []touch{{"subnet", created}, {"vpc", owned}}},
		{"update", "ec2:ModifySubnetAttribute", on("subnet", owned)},
		{"delete", "ec2:DeleteSubnet", on("subnet", owned)},
	}, describe("read", "ec2:DescribeSubnets"), describe("delete", "ec2:DescribeNetworkInterfaces"), tagUpdates("subnet")),
	"aws:ec2/internetGateway:InternetGateway": join([]call{
		{"create", "ec2:CreateInternetGateway", on("internet-gateway", created)},
		{"create", "ec2:AttachInternetGateway", []touch{{"internet-gateway", owned}, {"vpc", owned}}},
		{"delete", "ec2:DetachInternetGateway", []touch{{"internet-gateway", owned}, {"vpc", owned}}},
		{"delete", "ec2:DeleteInternetGateway", on("internet-gateway", owned)},
	}, describe("read", "ec2:DescribeInternetGateways"), tagUpdates("internet-gateway")),
	"aws:ec2/routeTable:RouteTable": join([]call{
		{"create", "ec2:CreateRouteTable", []touch{{"route-table", created}, {"vpc", owned}}},
		{"create", "ec2:CreateRoute", on("route-table", owned)},
		{"update", "ec2:ReplaceRoute", on("route-table", owned)},
		{"update", "ec2:DeleteRoute", on("route-table", owned)},
		{"delete", "ec2:DeleteRouteTable", on("route-table", owned)},
	}, describe("read", "ec2:DescribeRouteTables"), tagUpdates("route-table")),
	"aws:ec2/routeTableAssociation:RouteTableAssociation": join([]call{
		{"create", "ec2:AssociateRouteTable", []touch{{"route-table", owned}, {"subnet", owned}}},
		{"update", "ec2:ReplaceRouteTableAssociation", on("route-table", owned)},
		{"delete", "ec2:DisassociateRouteTable", on("route-table", owned)},
	}, describe("read", "ec2:DescribeRouteTables")),
	"aws:ec2/securityGroup:SecurityGroup": join([]call{
		{"create", "ec2:CreateSecurityGroup", []touch{{"security-group", created}, {"vpc", owned}}},
		{"create", "ec2:RevokeSecurityGroupEgress", on("security-group", owned)}, // AWS's default allow-all egress
		{"delete", "ec2:DeleteSecurityGroup", on("security-group", owned)},
	}, describe("read", "ec2:DescribeSecurityGroups"), describe("delete", "ec2:DescribeNetworkInterfaces"), tagUpdates("security-group")),
	"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": join([]call{
		{"create", "ec2:AuthorizeSecurityGroupIngress", []touch{{"security-group", owned}, {"security-group-rule", created}}},
		{"update", "ec2:ModifySecurityGroupRules", []touch{{"security-group", owned}, {"security-group-rule", owned}}},
		{"delete", "ec2:RevokeSecurityGroupIngress", []touch{{"security-group", owned}, {"security-group-rule", owned}}},
	}, describe("read", "ec2:DescribeSecurityGroupRules"), tagUpdates("security-group-rule")),
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": join([]call{
		{"create", "ec2:AuthorizeSecurityGroupEgress", []touch{{"security-group", owned}, {"security-group-rule", created}}},
		{"update", "ec2:ModifySecurityGroupRules", []touch{{"security-group", owned}, {"security-group-rule", owned}}},
		{"delete", "ec2:RevokeSecurityGroupEgress", []touch{{"security-group", owned}, {"security-group-rule", owned}}},
	}, describe("read", "ec2:DescribeSecurityGroupRules"), tagUpdates("security-group-rule")),
	"aws:ec2/keyPair:KeyPair": join([]call{
		{"create", "ec2:ImportKeyPair", on("key-pair", created)},
		{"delete", "ec2:DeleteKeyPair", on("key-pair", owned)},
	}, describe("read", "ec2:DescribeKeyPairs"), tagUpdates("key-pair")),
	"aws:ec2/instance:Instance": join([]call{
		{"create", "ec2:RunInstances", []touch{
			{"instance", created}, {"volume", created}, {"network-interface", untagged},
			{"subnet", owned}, {"security-group", owned}, {"key-pair", owned}, {"image", image},
		}},
		{"update", "ec2:ModifyInstanceAttribute", on("instance", owned)},
		{"update", "ec2:ModifyInstanceMetadataOptions", on("instance", owned)},
		{"update", "ec2:StopInstances", on("instance", owned)},
		{"update", "ec2:StartInstances", on("instance", owned)},
		{"update", "ec2:ModifyVolume", on("volume", owned)},
		{"delete", "ec2:TerminateInstances", on("instance", owned)},
	}, describe("read", "ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceTypes",
		"ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeVolumes", "ec2:DescribeTags", "ec2:DescribeVpcs"),
		describe("create", "ec2:DescribeImages"), tagUpdates("instance"), tagUpdates("volume")),
	// The data disk (infra/vm datadisk.go). Restoring names the snapshot
	// too (Service Authorization Reference: CreateVolume on volume and
	// snapshot), one of the stack's own: DLM copies the volume's tags to
	// its snapshots. Any stack may restore with one config key, so every
	// deploy role gets it.
	"aws:ebs/volume:Volume": join([]call{
		{"create", "ec2:CreateVolume", on("volume", created)},
		{"create", "ec2:CreateVolume", []touch{{"volume", created}, {"snapshot", owned}}},
		{"update", "ec2:ModifyVolume", on("volume", owned)},
		{"delete", "ec2:DeleteVolume", on("volume", owned)},
	}, describe("read", "ec2:DescribeVolumes"), describe("update", "ec2:DescribeVolumesModifications"), tagUpdates("volume"),
		describe("create", "ec2:DescribeSnapshots")), // the restore's check first (aws:ebs/getSnapshot)
	// AttachVolume on instance and volume (Service Authorization
	// Reference); the create waits for the instance to run. No delete:
	// skip_destroy (terraform-provider-aws v5.100.0
	// ebs_volume_attachment.go) detaches nothing.
	"aws:ec2/volumeAttachment:VolumeAttachment": join([]call{
		{"create", "ec2:AttachVolume", []touch{{"instance", owned}, {"volume", owned}}},
	}, describe("read", "ec2:DescribeVolumes", "ec2:DescribeInstances")),
	"aws:ec2/eip:Eip": join([]call{
		{"create", "ec2:AllocateAddress", on("elastic-ip", created)},
		// The association names the instance's primary network interface
		// too (recorded), which RunInstances made without our tags.
		{"create", "ec2:AssociateAddress", []touch{{"elastic-ip", owned}, {"instance", owned}, {"network-interface", untagged}}},
		{"update", "ec2:AssociateAddress", []touch{{"elastic-ip", owned}, {"instance", owned}, {"network-interface", untagged}}},
		// Service Authorization Reference: DisassociateAddress on
		// elastic-ip and network-interface.
		{"update", "ec2:DisassociateAddress", []touch{{"elastic-ip", owned}, {"network-interface", untagged}}},
		{"delete", "ec2:DisassociateAddress", []touch{{"elastic-ip", owned}, {"network-interface", untagged}}},
		{"delete", "ec2:ReleaseAddress", on("elastic-ip", owned)},
	}, describe("read", "ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute"), tagUpdates("elastic-ip")),
	// The data volume's snapshot policy (infra/vm awsSnapshotPolicy).
	// Service Authorization Reference, Amazon Data Lifecycle Manager: the
	// create lists no resource type and authorises dlm:TagResource and
	// iam:PassRole with it; the rest act on policy*. Which calls the
	// provider makes: recorded by the provider tier against
	// internal/dlmemu (moto has no DLM): create CreateLifecyclePolicy
	// then GetLifecyclePolicy; refresh GetLifecyclePolicy (tags included:
	// no ListTagsForResource); an update TagResource, UpdateLifecyclePolicy
	// and GetLifecyclePolicy; destroy DeleteLifecyclePolicy. UntagResource
	// is not recorded (no phase removes a tag); the provider's tag update
	// untags removed keys.
	"aws:dlm/lifecyclePolicy:LifecyclePolicy": {
		{"create", "dlm:CreateLifecyclePolicy", on(dlmPolicy, created)},
		{"create", "dlm:TagResource", on(dlmPolicy, created)},
		{"create", "iam:PassRole", on("role", passed)},
		{"read", "dlm:GetLifecyclePolicy", on(dlmPolicy, owned)},
		{"update", "dlm:UpdateLifecyclePolicy", on(dlmPolicy, owned)},
		{"update", "iam:PassRole", on("role", passed)}, // UpdateLifecyclePolicy sends ExecutionRoleArn again
		{"update", "dlm:TagResource", on(dlmPolicy, owned)},
		{"update", "dlm:UntagResource", on(dlmPolicy, owned)},
		{"delete", "dlm:DeleteLifecyclePolicy", on(dlmPolicy, owned)},
	},
	"aws:budgets/budget:Budget": {
		{"create", "budgets:ModifyBudget", on("budget", budget)},
		{"create", "budgets:TagResource", on("budget", budget)},
		{"read", "budgets:ViewBudget", on("budget", budget)},
		{"read", "budgets:ListTagsForResource", on("budget", budget)},
		{"update", "budgets:ModifyBudget", on("budget", budget)},
		{"update", "budgets:UntagResource", on("budget", budget)},
		{"delete", "budgets:ModifyBudget", on("budget", budget)},
	},
}

// spotNeeds: an instance with spot market options also makes (and reads)
// a spot request (Service Authorization Reference: RunInstances on
// spot-instances-request), and deleting it cancels that request:
// resourceInstanceDelete calls CancelSpotInstanceRequests when the
// instance's lifecycle is spot (hashicorp/terraform-provider-aws#41206;
// moto 5.2.1 does not report the lifecycle, so the provider tier does not
// see this call). Every deploy role gets these, because any stack may
// turn spot on with one config key.
var spotNeeds = []call{
	{"create", "ec2:RunInstances", on("spot-instances-request", untagged)},
	{"read", "ec2:DescribeSpotInstanceRequests", everything},
	{"delete", "ec2:CancelSpotInstanceRequests", on("spot-instances-request", untagged)},
}

// invokeNeeds: data sources.
var invokeNeeds = map[string][]call{
	"aws:index/getAvailabilityZones:getAvailabilityZones":       describe("read", "ec2:DescribeAvailabilityZones"),
	"aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": describe("read", "ec2:DescribeInstanceTypeOfferings"),
	// The AMI data source also reads UEFI data (recorded:
	// GetInstanceUefiData, with the image's id as InstanceId, which IAM
	// authorises as an instance ARN; no tags of ours).
	"aws:ec2/getAmi:getAmi": join(describe("read", "ec2:DescribeImages"),
		[]call{{"read", "ec2:GetInstanceUefiData", on("instance", untagged)}}), // InstanceId: the image's id
	// The restore's check that dataSnapshotId exists (infra/vm datadisk.go).
	"aws:ebs/getSnapshot:getSnapshot":               describe("read", "ec2:DescribeSnapshots"),
	"aws:index/getCallerIdentity:getCallerIdentity": nil,
	"aws:index/getRegion:getRegion":                 nil,
}

const (
	testRegion = "us-east-1"
	testPubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"
)

// declared runs the platform program for a committed stack and returns its
// resources and data-source calls.
func declared(t *testing.T, stack string) *mt.Mocks {
	t.Helper()
	c := mt.StackFile(t, stack).Set(map[string]string{
		"adminCidrs": `["198.51.100.0/24"]`, "sshPublicKey": testPubKey, "budgetEmails": `["ops@example.com"]`,
	}).Secret(map[string]string{
		"sshPrivateKey":   "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
		"dbPassword":      "s3cret-db-pass",
		"alertWebhookUrl": "https://hooks.example.com/alerts",
	})
	m, err := mt.Run(t, stack, c, infra.Run)
	if err != nil {
		t.Fatalf("the %s program failed under mocks: %v", stack, err)
	}
	return m
}

// derivedCall is a call with the tags of the declared resource it acts on.
type derivedCall struct {
	call
	res  string                       // Pulumi type and name, for messages
	tags map[string]map[string]string // EC2 type -> the tags the declared resource gives it
}

// derive maps what the program declared for stack to calls.
func derive(t *testing.T, m *mt.Mocks) []derivedCall {
	t.Helper()
	var out []derivedCall
	for _, r := range m.Resources {
		if !r.Custom || !strings.HasPrefix(r.Type, "aws:") {
			continue
		}
		calls, ok := needs[r.Type]
		if !ok {
			t.Errorf("the program declares %s %s, which the needs table does not know: add the calls of its lifecycle (Service Authorization Reference)", r.Type, r.Name)
			continue
		}
		if r.Type == "aws:ec2/instance:Instance" { // spot or not: see spotNeeds
			calls = append(slices.Clone(calls), spotNeeds...)
		}
		// The tags the declared resource gives what it creates: its own
		// type gets `tags`; an instance's root volume `volumeTags`. A
		// resource declared without them gets none, and its create is
		// then refused below, as AWS would.
		tags := map[string]map[string]string{}
		for _, c := range calls {
			if i := slices.IndexFunc(c.on, func(t touch) bool { return t.kind == created }); c.op == "create" && i >= 0 {
				tags[c.on[i].typ] = mt.StringMap(r.Inputs, "tags")
				break
			}
		}
		if r.Type == "aws:ec2/instance:Instance" {
			tags["volume"] = mt.StringMap(r.Inputs, "rootBlockDevice.tags")
		}
		for _, c := range calls {
			out = append(out, derivedCall{c, r.Type + " " + r.Name, tags})
		}
	}
	for _, c := range m.Calls {
		if !strings.HasPrefix(c.Token, "aws:") {
			continue
		}
		calls, ok := invokeNeeds[c.Token]
		if !ok {
			t.Errorf("the program calls data source %s, which invokeNeeds does not know", c.Token)
		}
		for _, cl := range calls {
			out = append(out, derivedCall{cl, c.Token, nil})
		}
	}
	if len(out) == 0 {
		t.Fatal("the program declared no AWS resources")
	}
	return out
}

// requests are the authorisation requests of one call made for stack
// (whose tags the resources carry), one per resource it touches; the call
// succeeds only when every one is allowed.
func (d derivedCall) requests(stack string) []request {
	const acct = mt.Account
	base := map[string]string{"project": Platform, "stack": stack}
	var out []request
	for i, tc := range d.on {
		arn := fmt.Sprintf("arn:aws:ec2:%s:%s:%s/%s-%d", testRegion, acct, tc.typ, tc.typ, i)
		if tc.typ == dlmPolicy {
			arn = fmt.Sprintf("arn:aws:dlm:%s:%s:policy/policy-%d", testRegion, acct, i)
		}
		ctx := map[string][]string{}
		tags := base
		if declared, ok := d.tags[tc.typ]; ok && tc.kind == created {
			tags = maps.Clone(declared)
			if tags["stack"] != "" { // the declared stack tag, moved to the stack asked about
				tags["stack"] = stack
			}
		}
		switch tc.kind {
		case anyRes:
			arn = "*"
		case image:
			arn = fmt.Sprintf("arn:aws:ec2:%s::image/ami-0123", testRegion)
			ctx["ec2:Owner"] = []string{CanonicalAccount}
		case budget:
			arn = fmt.Sprintf("arn:aws:budgets::%s:budget/%s-%s-monthly", acct, Platform, stack)
		case passed:
			arn = vm.SnapshotRoleARN(acct, Platform)
			ctx["iam:PassedToService"] = []string{DLMService}
		case owned:
			if tc.typ == "snapshot" { // snapshot ARNs name no account
				arn = fmt.Sprintf("arn:aws:ec2:%s::snapshot/snap-%d", testRegion, i)
			}
			for k, v := range tags {
				ctx["aws:ResourceTag/"+k] = []string{v}
			}
			if d.action == "ec2:CreateTags" || d.action == "ec2:DeleteTags" || d.action == "dlm:TagResource" || d.action == "dlm:UntagResource" {
				ctx["aws:TagKeys"] = []string{"Name"}
				if d.action == "ec2:CreateTags" || d.action == "dlm:TagResource" {
					ctx["aws:RequestTag/Name"] = []string{"renamed"}
				}
			}
		case created:
			var keys []string
			for k, v := range tags {
				ctx["aws:RequestTag/"+k] = []string{v}
				keys = append(keys, k)
			}
			sort.Strings(keys)
			ctx["aws:TagKeys"] = keys
			if tc.typ == dlmPolicy { // no resource type for the create; its tagging is a row of its own
				if d.action == "dlm:CreateLifecyclePolicy" {
					arn = "*"
				}
				out = append(out, request{d.action, arn, ctx})
				continue
			}
			// ...and the tagging itself, at creation.
			tagCtx := maps.Clone(ctx)
			tagCtx["ec2:CreateAction"] = []string{strings.TrimPrefix(d.action, "ec2:")}
			out = append(out, request{"ec2:CreateTags", arn, tagCtx})
		}
		out = append(out, request{d.action, arn, ctx})
	}
	return out
}

func testScope() Scope {
	return Scope{Project: Platform, Account: mt.Account, Region: testRegion, Bucket: "state-bucket", StatePrefix: "platform",
		LockTable: "locks", StateKeyARN: "arn:aws:kms:us-east-1:" + mt.Account + ":key/state",
		SecretsKeyARNs: map[string]string{
			"dev":  "arn:aws:kms:us-east-1:" + mt.Account + ":key/secrets-dev",
			"prod": "arn:aws:kms:us-east-1:" + mt.Account + ":key/secrets-prod",
		}}
}

var stacks = []string{"dev", "prod"}

func other(stack string) string {
	if stack == "dev" {
		return "prod"
	}
	return "dev"
}

// cloudActions are the EC2 and Budgets actions a policy grants.
func cloudActions(d PolicyDocument) []string {
	var out []string
	for _, s := range d.Statement {
		for _, a := range s.Action {
			if strings.HasPrefix(a, "ec2:") || strings.HasPrefix(a, "budgets:") || strings.HasPrefix(a, "dlm:") || strings.HasPrefix(a, "iam:") {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func actionsOf(calls []derivedCall, keep func(call) bool) []string {
	var out []string
	for _, c := range calls {
		if keep(c.call) {
			out = append(out, c.action)
			if slices.ContainsFunc(c.on, func(t touch) bool { return t.kind == created && t.typ != dlmPolicy }) {
				out = append(out, "ec2:CreateTags")
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func isRead(c call) bool { return c.op == "read" || strings.Contains(c.action, ":Describe") }

// Each stack's deploy role can make every call the program's resources
// need for that stack, none of the other stack's, and grants no EC2 or
// Budgets action the program does not need.
func TestDeployRolesAllowExactlyWhatTheProgramNeeds(t *testing.T) {
	s := testScope()
	derived := map[string][]derivedCall{}
	for _, st := range stacks {
		derived[st] = derive(t, declared(t, st))
	}
	// Describe* are granted on "*" to every role alike: what any
	// committed stack reads.
	var reads []string
	for _, st := range stacks {
		reads = append(reads, actionsOf(derived[st], func(c call) bool { return c.on[0].kind == anyRes })...)
	}
	slices.Sort(reads)
	reads = slices.Compact(reads)
	if !slices.Equal(reads, slices.Sorted(slices.Values(DescribeActions))) {
		t.Errorf("Describe actions granted %v\nneeded by the committed stacks %v", DescribeActions, reads)
	}
	for _, st := range stacks {
		d := DeployPolicy(s, st)
		for _, c := range derived[st] {
			for _, r := range c.requests(st) {
				if !allowed(t, d, r) {
					t.Errorf("deploy-%s cannot %s %s: %v", st, c.op, c.res, r)
				}
			}
			if !slices.ContainsFunc(c.on, func(t touch) bool { return t.kind == owned || t.kind == created || t.kind == budget }) {
				continue // "*", Canonical's images, untagged parts: no stack to tell apart
			}
			// The same call against the other stack's resources fails
			// (some resource of it is denied).
			denied := false
			for _, r := range c.requests(other(st)) {
				denied = denied || !allowed(t, d, r)
			}
			if !denied {
				t.Errorf("deploy-%s may %s %s of stack %s (%s)", st, c.op, c.res, other(st), c.action)
			}
		}
		want := slices.Concat(reads, actionsOf(derived[st], func(c call) bool { return c.on[0].kind != anyRes }))
		slices.Sort(want)
		want = slices.Compact(want)
		if got := cloudActions(d); !slices.Equal(got, want) {
			t.Errorf("deploy-%s grants EC2/Budgets actions\n%v\nthe program needs\n%v\nextra %v, missing %v", st, got, want, minus(got, want), minus(want, got))
		}
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// The read-only roles make every read of their stacks and no change to any
// stack; only the runner-access rule on their own stacks' automation group.
func TestReadRolesReadTheirStacksAndChangeNothing(t *testing.T) {
	s := testScope()
	for _, spec := range Roles(stacks, []string{"dev"}, []string{"prod"}) {
		if spec.Deploy {
			continue
		}
		d := spec.Policy(s)
		for _, st := range stacks {
			for _, c := range derive(t, declared(t, st)) {
				reqs := c.requests(st)
				ok := true
				for _, r := range reqs {
					ok = ok && allowed(t, d, r)
				}
				switch {
				case isRead(c.call) && slices.Contains(spec.Stacks, st) && !ok:
					t.Errorf("%s cannot %s %s of %s: %v", spec.Name, c.action, c.res, st, reqs)
				case !isRead(c.call) && ok:
					t.Errorf("%s may %s %s of %s (%s)", spec.Name, c.op, c.res, st, c.action)
				}
			}
		}
	}
}

// Tag-on-create: a create request's tags are authorised as ec2:CreateTags
// with ec2:CreateAction, before any resource tag exists; without the
// TagOnCreate statement no tagged create succeeds.
func TestTagOnCreateNeedsItsOwnStatement(t *testing.T) {
	s := testScope()
	d := DeployPolicy(s, "dev")
	var cut PolicyDocument
	for _, st := range d.Statement {
		if st.Sid != "TagOnCreate" {
			cut.Statement = append(cut.Statement, st)
		}
	}
	if len(cut.Statement) == len(d.Statement) {
		t.Fatal("no TagOnCreate statement")
	}
	vpcCreate := request{"ec2:CreateTags", "arn:aws:ec2:us-east-1:" + mt.Account + ":vpc/vpc-new", map[string][]string{
		"ec2:CreateAction": {"CreateVpc"}, "aws:RequestTag/project": {Platform}, "aws:RequestTag/stack": {"dev"},
		"aws:TagKeys": {"Name", "managed-by", "project", "stack"},
	}}
	if !allowed(t, d, vpcCreate) || allowed(t, cut, vpcCreate) {
		t.Errorf("tagging a new VPC: with TagOnCreate %v, without %v", allowed(t, d, vpcCreate), allowed(t, cut, vpcCreate))
	}
	// Not a way to retag: without ec2:CreateAction the stack key is refused.
	retag := request{"ec2:CreateTags", "arn:aws:ec2:us-east-1:" + mt.Account + ":vpc/vpc-1", map[string][]string{
		"aws:ResourceTag/project": {Platform}, "aws:ResourceTag/stack": {"dev"},
		"aws:RequestTag/stack": {"prod"}, "aws:TagKeys": {"stack"},
	}}
	if allowed(t, d, retag) {
		t.Error("deploy-dev may move a dev resource into prod by retagging it")
	}
}

// A branch's workflow dispatched against unprotected dev gets a token with
// subject repo:<r>:environment:dev (GitHub docs, OpenID Connect reference:
// a job that references an environment gets environment:<name>): it can
// assume deploy-dev and nothing that reaches prod. With the repository's
// ids configured, the same holds for the immutable form
// repo:<owner>@<owner id>/<name>@<repository id>:... (github/docs,
// content/actions/concepts/security/openid-connect.md, "Immutable subject
// claims": "repo:octocat@123456/my-repo@456789:ref:refs/heads/main"), and
// the ids must be exactly the repository's.
func TestEachRoleTrustsItsOwnSubjectsOnly(t *testing.T) {
	specs := Roles(stacks, []string{"dev"}, []string{"prod"})
	const provider = "arn:aws:iam::" + mt.Account + ":oidc-provider/" + GitHubIssuer
	assume := func(d PolicyDocument, sub string) bool {
		return allowed(t, d, request{"sts:AssumeRoleWithWebIdentity", "", map[string][]string{
			GitHubIssuer + ":aud": {GitHubAudience}, GitHubIssuer + ":sub": {sub},
		}})
	}
	subjects := []string{"environment:dev", "environment:prod", "pull_request", "ref:refs/heads/main", "ref:refs/heads/feature", "environment:dev-x"}
	want := map[string][]string{
		"deploy-dev":  {"environment:dev"},
		"deploy-prod": {"environment:prod"},
		"preview":     {"pull_request"},
		"drift":       {"ref:refs/heads/main"},
	}
	if len(specs) != len(want) {
		t.Fatalf("roles %v", specs)
	}
	named := GitHubRepo{Name: "acme/platform"}
	withIDs := GitHubRepo{Name: "acme/platform", OwnerID: "123456", ID: "456789"}
	const legacy, immutable = "repo:acme/platform:", "repo:acme@123456/platform@456789:"
	for _, spec := range specs {
		byName := TrustPolicy(provider, named, spec.Subjects)
		both := TrustPolicy(provider, withIDs, spec.Subjects)
		for _, sub := range subjects {
			mine := slices.Contains(want[spec.Name], sub)
			for _, c := range []struct {
				d    PolicyDocument
				sub  string
				want bool
			}{
				{byName, legacy + sub, mine},
				{byName, immutable + sub, false}, // ids not configured: a repository on immutable claims cannot assume
				{both, legacy + sub, mine},
				{both, immutable + sub, mine},
				{both, "repo:acme@123456/platform@999999:" + sub, false}, // another repository of the same owner, same name later
				{both, "repo:acme@777777/platform@456789:" + sub, false},
				{both, "repo:evil/platform:" + sub, false},
				{both, "repo:evil@123456/platform@456789:" + sub, false},
			} {
				if got := assume(c.d, c.sub); got != c.want {
					t.Errorf("%s trusts %s: %v, want %v", spec.Name, c.sub, got, c.want)
				}
			}
		}
		// Exact subjects only: no wildcard operator, no wildcard in a value.
		for op, kv := range both.Statement[0].Condition {
			if op != "StringEquals" {
				t.Errorf("%s: trust condition %s", spec.Name, op)
			}
			for _, v := range kv[GitHubIssuer+":sub"].([]string) {
				if strings.ContainsAny(v, "*?") {
					t.Errorf("%s trusts pattern %s", spec.Name, v)
				}
			}
		}
	}
}

// State, lock and keys: each role reaches its stacks' files in Pulumi's
// project layout, its own lock item and its own secrets key, and no other.
func TestRolesReachOnlyTheirStacksStateLockAndKeys(t *testing.T) {
	s := testScope()
	obj := func(key string) string { return "arn:aws:s3:::state-bucket/platform/.pulumi/" + key }
	table := "arn:aws:dynamodb:us-east-1:" + mt.Account + ":table/locks"
	via := func(svc string) map[string][]string {
		return map[string][]string{"kms:ViaService": {svc + ".us-east-1.amazonaws.com"}}
	}
	list := func(prefix string) request {
		return request{"s3:ListBucket", "arn:aws:s3:::state-bucket", map[string][]string{"s3:prefix": {"platform/.pulumi/" + prefix}}}
	}
	lockItem := func(action, key string) request {
		return request{action, table, map[string][]string{"dynamodb:LeadingKeys": {key}}}
	}
	for _, spec := range Roles(stacks, []string{"dev"}, []string{"prod"}) {
		d := spec.Policy(s)
		for _, st := range stacks {
			mine := slices.Contains(spec.Stacks, st)
			write := mine && spec.Deploy
			for _, c := range []struct {
				r    request
				want bool
			}{
				{request{"s3:GetObject", obj("stacks/" + Platform + "/" + st + ".json"), nil}, mine},
				{request{"s3:GetObject", obj("meta.yaml"), nil}, true},
				{request{"s3:PutObject", obj("meta.yaml"), nil}, false},
				{request{"s3:PutObject", obj("stacks/" + Platform + "/" + st + ".json"), nil}, write},
				{request{"s3:PutObject", obj("stacks/" + Platform + "/" + st + ".json.bak"), nil}, write},
				{request{"s3:PutObject", obj("history/" + Platform + "/" + st + "/" + st + "-1.history.json"), nil}, write},
				{request{"s3:PutObject", obj("backups/" + Platform + "/" + st + "/" + st + ".1.json"), nil}, write},
				{request{"s3:PutObject", obj("locks/organization/" + Platform + "/" + st + "/id.json"), nil}, write},
				{request{"s3:DeleteObject", obj("locks/organization/" + Platform + "/" + st + "/id.json"), nil}, write},
				{list("stacks/" + Platform + "/" + st + ".json"), mine},
				{list("locks/organization/" + Platform + "/" + st + "/"), mine},
				{list("history/" + Platform + "/" + st + "/"), mine},
				{request{"s3:ListBucket", "arn:aws:s3:::state-bucket", nil}, true}, // the 404-or-403 check of a missing key
				{list("stacks/" + Platform + "/"), false},                          // the other stack's files by prefix
				{list(""), false},
				{request{"kms:Decrypt", s.SecretsKeyARNs[st], nil}, mine},
				{request{"kms:Encrypt", s.SecretsKeyARNs[st], nil}, false},
				{request{"kms:Decrypt", s.StateKeyARN, via("s3")}, true},
				{request{"kms:Decrypt", s.StateKeyARN, via("dynamodb")}, true},
				{request{"kms:Decrypt", s.StateKeyARN, nil}, false}, // only through S3 and DynamoDB
				{request{"kms:GenerateDataKey", s.StateKeyARN, via("s3")}, spec.Deploy},
				{lockItem("dynamodb:GetItem", Platform+"/"+st), mine},
				{lockItem("dynamodb:PutItem", Platform+"/"+st), write},
				{lockItem("dynamodb:PutItem", Platform+"/"+st+"#history#2026-01-01T00:00:00Z#t"), write},
				{lockItem("dynamodb:DeleteItem", Platform+"/"+st), write},
				{lockItem("dynamodb:UpdateItem", Platform+"/"+st), write},
				{request{"dynamodb:Scan", table, nil}, true},
				{request{"dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:" + mt.Account + ":table/other", map[string][]string{"dynamodb:LeadingKeys": {Platform + "/" + st}}}, false},
			} {
				if got := allowed(t, d, c.r); got != c.want {
					t.Errorf("%s, stack %s: %v allowed %v, want %v (statements %v)", spec.Name, st, c.r, got, c.want, allowing(t, d, c.r))
				}
			}
		}
	}
}

// s3:prefix is a condition key of ListBucket (and ListBucketVersions) only
// (Service Authorization Reference, Amazon S3); a statement putting another
// action under it grants that action to nobody.
func TestOnlyListBucketIsUnderAnS3PrefixCondition(t *testing.T) {
	s := testScope()
	for _, spec := range Roles(stacks, []string{"dev"}, []string{"prod"}) {
		for _, st := range spec.Policy(s).Statement {
			for _, kv := range st.Condition {
				if _, ok := kv["s3:prefix"]; ok && !slices.Equal(st.Action, []string{"s3:ListBucket"}) {
					t.Errorf("%s statement %s: %v under s3:prefix", spec.Name, st.Sid, st.Action)
				}
			}
		}
	}
}

// The runner-access rule: each role opens only its own stacks' automation
// security group; the pull-request role cannot open prod's.
func TestRunnerAccessOnlyOnOwnStacksAutomationGroup(t *testing.T) {
	s := testScope()
	sg := func(stack string, automation bool) request {
		ctx := map[string][]string{"aws:ResourceTag/project": {Platform}, "aws:ResourceTag/stack": {stack}}
		if automation {
			ctx["aws:ResourceTag/"+network.AutomationTagKey] = []string{network.AutomationTag}
		}
		return request{"ec2:AuthorizeSecurityGroupIngress", "arn:aws:ec2:us-east-1:" + mt.Account + ":security-group/sg-1", ctx}
	}
	for _, spec := range Roles(stacks, []string{"dev"}, []string{"prod"}) {
		d := spec.Policy(s)
		for _, st := range stacks {
			mine := slices.Contains(spec.Stacks, st)
			if got := allowed(t, d, sg(st, true)); got != mine {
				t.Errorf("%s opens %s's automation group: %v", spec.Name, st, got)
			}
			if !spec.Deploy && allowed(t, d, sg(st, false)) {
				t.Errorf("%s opens %s's other security groups", spec.Name, st)
			}
			// The rule a request creates or names is untagged; the group
			// in the same request is what limits it.
			rule := request{"ec2:AuthorizeSecurityGroupIngress", "arn:aws:ec2:us-east-1:" + mt.Account + ":security-group-rule/*", nil}
			if !allowed(t, d, rule) {
				t.Errorf("%s cannot create the runner's rule", spec.Name)
			}
		}
	}
}
