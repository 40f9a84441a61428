package backend

import (
	"fmt"
	"slices"
	"strings"

	"microk8s-platform/infra/network"
	"microk8s-platform/infra/vm"
	"microk8s-platform/internal/iampolicy"
)

// PolicyDocument is an IAM policy (internal/iampolicy, which also
// evaluates one).
type PolicyDocument = iampolicy.Document

// Statement is one IAM policy statement.
type Statement = iampolicy.Statement

// Scope is what the CI roles may touch: the names and ARNs of this
// project's state, lock, keys and cloud resources.
type Scope struct {
	Project, Account, Region string
	Bucket, StatePrefix      string
	LockTable                string
	StateKeyARN              string            // the bucket's and the lock table's SSE-KMS key
	SecretsKeyARNs           map[string]string // stack -> the key of its secrets provider
}

func (s Scope) bucketARN() string { return "arn:aws:s3:::" + s.Bucket }
func (s Scope) tableARN() string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.Region, s.Account, s.LockTable)
}
func (s Scope) ec2ARN(kind string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/*", s.Region, s.Account, kind)
}
func (s Scope) dlmPolicyARN() string {
	return fmt.Sprintf("arn:aws:dlm:%s:%s:policy/*", s.Region, s.Account)
}
func (s Scope) snapshotRoleARN() string { return vm.SnapshotRoleARN(s.Account, s.Project) }
func (s Scope) budgetARN(stack string) string {
	return fmt.Sprintf("arn:aws:budgets::%s:budget/%s-%s-*", s.Account, s.Project, stack)
}

// StackKeys are the S3 keys of one stack under the state prefix, as
// patterns. Pulumi's self-managed backend in its project layout (meta.yaml
// version 1, what a new bucket gets) keeps a stack in
// .pulumi/stacks/<project>/<stack>.json[.gz|.zst] (+ .bak), its tags in
// .pulumi/stacks/<project>/<stack>.pulumi-tags (read on every preview and
// update, which tolerate only NotFound: pulumi/pulumi v3.274.1
// pkg/backend/diy/stack_tags.go loadStackTags; S3's AccessDenied is not
// that, so without it every command fails; found by the real CLI in
// statecalls_test.go),
// .pulumi/history/<project>/<stack>/, .pulumi/backups/<project>/<stack>/ and
// its lock files in .pulumi/locks/organization/<project>/<stack>/
// (pulumi/pulumi pkg/backend/diy/store.go projectReferenceStore, lock.go
// stackLockDir with FullyQualifiedName "organization/<project>/<stack>").
func (s Scope) StackKeys(stack string) []string {
	p := s.StatePrefix + "/.pulumi/"
	return []string{
		p + "stacks/" + s.Project + "/" + stack + ".json*",
		p + "stacks/" + s.Project + "/" + stack + ".pulumi-tags",
		p + "history/" + s.Project + "/" + stack + "/*",
		p + "backups/" + s.Project + "/" + stack + "/*",
		p + "locks/organization/" + s.Project + "/" + stack + "/*",
	}
}

// MetaKey is the backend's layout version file every CLI reads on login
// (pkg/backend/diy/meta.go); it is written once, by the first login.
func (s Scope) MetaKey() string { return s.StatePrefix + "/.pulumi/meta.yaml" }

// LockKey is a stack's item in the deploy-lock table (scripts/stacklock).
func (s Scope) LockKey(stack string) string { return s.Project + "/" + stack }

func (s Scope) objectARNs(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.bucketARN()+"/"+k)
	}
	return out
}

func (s Scope) stackKeys(stacks []string) []string {
	var out []string
	for _, st := range stacks {
		out = append(out, s.StackKeys(st)...)
	}
	return out
}

func (s Scope) secretsKeys(stacks []string) []string {
	var out []string
	for _, st := range stacks {
		out = append(out, s.SecretsKeyARNs[st])
	}
	return out
}

func (s Scope) budgets(stacks []string) []string {
	var out []string
	for _, st := range stacks {
		out = append(out, s.budgetARN(st))
	}
	return out
}

// viaStateServices: the state key is only used by S3 and DynamoDB on the
// caller's behalf, never directly.
func (s Scope) viaStateServices() map[string]map[string]any {
	return map[string]map[string]any{"StringEquals": {"kms:ViaService": []string{
		"s3." + s.Region + ".amazonaws.com", "dynamodb." + s.Region + ".amazonaws.com",
	}}}
}

// tagged is "the resource carries the tags of one of stacks".
func (s Scope) tagged(key string, stacks []string) map[string]any {
	return map[string]any{key + "/project": s.Project, key + "/stack": stackValue(stacks)}
}

func stackValue(stacks []string) any {
	if len(stacks) == 1 {
		return stacks[0]
	}
	return slices.Clone(stacks)
}

// DescribeActions are the read calls the program's providers make: refresh
// and preview read every resource, the data sources look up the zone, the
// instance type's offerings and the image. The Describe* actions support
// no resource-level permissions, so they are granted on "*" (Service
// Authorization Reference, Amazon EC2: the Describe* actions list no
// resource type); DescribeTags among them, which every read of an
// instance calls (recorded by providercalls_test.go).
var DescribeActions = []string{
	"ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute", "ec2:DescribeAvailabilityZones",
	"ec2:DescribeImages", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceCreditSpecifications",
	"ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeInstances",
	"ec2:DescribeInternetGateways", "ec2:DescribeKeyPairs", "ec2:DescribeNetworkAcls",
	"ec2:DescribeNetworkInterfaces", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroupRules",
	"ec2:DescribeSecurityGroups", "ec2:DescribeSnapshots", "ec2:DescribeSpotInstanceRequests", "ec2:DescribeSubnets",
	"ec2:DescribeTags", "ec2:DescribeVolumes", "ec2:DescribeVolumesModifications", "ec2:DescribeVpcAttribute", "ec2:DescribeVpcs",
}

// DLMReadActions read a stack's snapshot policy (refresh, preview). The
// provider reads the policy's tags from GetLifecyclePolicy itself: the
// provider tier records no ListTagsForResource.
var DLMReadActions = []string{"dlm:GetLifecyclePolicy"}

// DLMOwnedActions change or delete a snapshot policy that carries the
// stack's tags.
var DLMOwnedActions = []string{"dlm:DeleteLifecyclePolicy", "dlm:GetLifecyclePolicy", "dlm:UpdateLifecyclePolicy"}

// DLMService is DLM's service principal: the snapshot role trusts it, and
// it is what iam:PassedToService names.
const DLMService = "dlm.amazonaws.com"

// CreateActions create EC2 resources that carry the stack's tags from the
// request on (tag-on-create).
var CreateActions = []string{
	"ec2:AllocateAddress", "ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
	"ec2:CreateInternetGateway", "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet",
	"ec2:CreateVolume", "ec2:CreateVpc", "ec2:ImportKeyPair", "ec2:RunInstances",
}

// CreatedTypes are the EC2 resource types CreateActions make with tags.
var CreatedTypes = []string{
	"elastic-ip", "instance", "internet-gateway", "key-pair", "route-table", "security-group",
	"security-group-rule", "subnet", "volume", "vpc",
}

// OwnedActions act on EC2 resources that already carry the stack's tags:
// changing or deleting them, and using them as the parent of a new one
// (a subnet's VPC, an instance's subnet, group and key).
var OwnedActions = []string{
	"ec2:AssociateAddress", "ec2:AssociateRouteTable", "ec2:AttachInternetGateway", "ec2:AttachVolume",
	"ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
	"ec2:CreateRoute", "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateSubnet",
	"ec2:DeleteInternetGateway", "ec2:DeleteKeyPair", "ec2:DeleteRoute", "ec2:DeleteRouteTable",
	"ec2:DeleteSecurityGroup", "ec2:DeleteSubnet", "ec2:DeleteVolume", "ec2:DeleteVpc", "ec2:DetachInternetGateway",
	"ec2:DisassociateAddress", "ec2:DisassociateRouteTable", "ec2:ModifyInstanceAttribute",
	"ec2:ModifyInstanceMetadataOptions", "ec2:ModifySecurityGroupRules", "ec2:ModifySubnetAttribute",
	"ec2:ModifyVolume", "ec2:ModifyVpcAttribute", "ec2:ReleaseAddress", "ec2:ReplaceRoute",
	"ec2:ReplaceRouteTableAssociation", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
	"ec2:RunInstances", "ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances",
}

// LaunchTypes are what RunInstances creates without tags of ours: the
// instance's network interface and, for spot, its request. The statement
// is safe because the same request must also pass CreateTagged for the
// instance itself.
var LaunchTypes = []string{"network-interface", "spot-instances-request"}

// TagKeys are the tags that say whose a resource is; only tag-on-create may
// set them, so no role can move a resource into (or out of) a stack.
var TagKeys = []string{"project", "stack"}

// readStatements are what every role needs for stacks: read their state
// (a self-managed backend's preview takes no lock file: diy Preview calls
// no Lock), decrypt their secrets, read the deploy lock, describe what the
// program manages, and open and close the runner's temporary SSH/API rule
// on those stacks' automation security group only.
func (s Scope) readStatements(stacks []string) []Statement {
	keys := s.stackKeys(stacks)
	lockKeys := make([]string, 0, len(stacks))
	for _, st := range stacks {
		lockKeys = append(lockKeys, s.LockKey(st))
	}
	return []Statement{
		// s3:prefix is a condition key of ListBucket only (Service
		// Authorization Reference, Amazon S3); Pulumi lists a stack's
		// files by prefix (stackPath, checkForLock, history), and a
		// listing under another prefix is refused. IfExists: S3 answers
		// a read of a missing key with 404 only to a caller who may
		// ListBucket, otherwise 403 (Amazon S3 API Reference, GetObject,
		// "Permissions"), and that check carries no s3:prefix. The CLI
		// reads the optional <stack>.pulumi-tags on every command and
		// accepts only NotFound, so without it every preview and update
		// fails (statecalls_test.go). What the bare ListBucket adds is
		// the names of the state files, not their contents.
		{Sid: "ListState", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{s.bucketARN()},
			Condition: map[string]map[string]any{"StringLikeIfExists": {"s3:prefix": keys}}},
		{Sid: "ReadState", Effect: "Allow", Action: []string{"s3:GetObject"},
			Resource: append(s.objectARNs(keys), s.objectARNs([]string{s.MetaKey()})...)},
		{Sid: "StateKey", Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: []string{s.StateKeyARN},
			Condition: s.viaStateServices()},
		{Sid: "DecryptSecrets", Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: s.secretsKeys(stacks)},
		{Sid: "LockStatus", Effect: "Allow", Action: []string{"dynamodb:GetItem"}, Resource: []string{s.tableARN()},
			Condition: map[string]map[string]any{"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": lockKeys}}},
		{Sid: "LockHistory", Effect: "Allow", Action: []string{"dynamodb:Scan"}, Resource: []string{s.tableARN()}},
		{Sid: "Describe", Effect: "Allow", Action: DescribeActions, Resource: []string{"*"}},
		// The AMI lookup reads UEFI data with the image's id as InstanceId
		// (recorded by providercalls_test.go): authorised on instance
		// (Service Authorization Reference, Amazon EC2,
		// GetInstanceUefiData), read only.
		{Sid: "ImageUefiData", Effect: "Allow", Action: []string{"ec2:GetInstanceUefiData"}, Resource: []string{s.ec2ARN("instance")}},
		{Sid: "ReadBudget", Effect: "Allow", Action: []string{"budgets:ViewBudget", "budgets:ListTagsForResource"},
			Resource: s.budgets(stacks)},
		// The snapshot policy (infra/vm awsSnapshotPolicy): its reads are
		// authorised on the policy, with aws:ResourceTag (Service
		// Authorization Reference, Amazon Data Lifecycle Manager:
		// GetLifecyclePolicy on policy*; the policy resource type's
		// condition key aws:ResourceTag/${TagKey}).
		{Sid: "ReadSnapshotPolicy", Effect: "Allow", Action: DLMReadActions, Resource: []string{s.dlmPolicyARN()},
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:ResourceTag", stacks)}},
		{Sid: "RunnerAccess", Effect: "Allow", Action: []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"},
			Resource: []string{s.ec2ARN("security-group")},
			Condition: map[string]map[string]any{"StringEquals": mergeMaps(
				s.tagged("aws:ResourceTag", stacks),
				map[string]any{"aws:ResourceTag/" + network.AutomationTagKey: network.AutomationTag})}},
		// The rule itself: a new one (untagged) when opening, one by id
		// when sweeping (Service Authorization Reference, Amazon EC2:
		// AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress on
		// security-group* and security-group-rule). The same request
		// names the group, which RunnerAccess limits; found by the
		// workflow tier (scripts/workflows steps_test.go).
		{Sid: "RunnerAccessRule", Effect: "Allow", Action: []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"},
			Resource: []string{s.ec2ARN("security-group-rule")}},
	}
}

func mergeMaps(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// ReadPolicy is a read-only role's (pull-request previews, the drift
// check): the reads for stacks, plus the runner's temporary access rule.
func ReadPolicy(s Scope, stacks []string) PolicyDocument {
	return PolicyDocument{Version: "2012-10-17", Statement: s.readStatements(stacks)}
}

// DeployPolicy is one stack's deploy role: the reads, writing that stack's
// state, its lock items, and managing only EC2 resources and the budget of
// that stack (created with its tags, changed only while they carry them).
func DeployPolicy(s Scope, stack string) PolicyDocument {
	one := []string{stack}
	keys := s.StackKeys(stack)
	st := s.readStatements(one)
	for i := range st {
		if st[i].Sid == "StateKey" { // S3 asks for a data key on every PutObject to an SSE-KMS bucket
			st[i].Action = []string{"kms:Decrypt", "kms:GenerateDataKey"}
		}
	}
	st = append(st,
		Statement{Sid: "WriteState", Effect: "Allow", Action: []string{"s3:PutObject", "s3:DeleteObject"}, Resource: s.objectARNs(keys)},
		Statement{Sid: "DeployLock", Effect: "Allow", Action: []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
			Resource: []string{s.tableARN()},
			Condition: map[string]map[string]any{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": []string{
				s.LockKey(stack), s.LockKey(stack) + "#history#*"}}}},
		Statement{Sid: "CreateTagged", Effect: "Allow", Action: CreateActions, Resource: typeARNs(s, CreatedTypes),
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:RequestTag", one)}},
		// Tagging at creation is authorised as ec2:CreateTags with
		// ec2:CreateAction set, before any resource tag exists (EC2 User
		// Guide, "Grant permission to tag Amazon EC2 resources during creation").
		Statement{Sid: "TagOnCreate", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{s.ec2ARN("*")},
			Condition: map[string]map[string]any{"StringEquals": mergeMaps(
				map[string]any{"ec2:CreateAction": createActionNames()}, s.tagged("aws:RequestTag", one))}},
		Statement{Sid: "UseOwned", Effect: "Allow", Action: OwnedActions, Resource: []string{s.ec2ARN("*")},
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:ResourceTag", one)}},
		Statement{Sid: "RetagOwned", Effect: "Allow", Action: []string{"ec2:CreateTags", "ec2:DeleteTags"}, Resource: []string{s.ec2ARN("*")},
			Condition: map[string]map[string]any{
				"StringEquals":                 s.tagged("aws:ResourceTag", one),
				"ForAllValues:StringNotEquals": {"aws:TagKeys": slices.Clone(TagKeys)},
			}},
		Statement{Sid: "LaunchParts", Effect: "Allow", Action: []string{"ec2:RunInstances"}, Resource: typeARNs(s, LaunchTypes)},
		// What RunInstances made untagged, later: the Elastic IP's
		// association names the instance's network interface, and
		// deleting a spot instance cancels its request. The same call
		// names the stack's own tagged address or instance, which
		// UseOwned must allow too.
		Statement{Sid: "AddressOnInterface", Effect: "Allow", Action: []string{"ec2:AssociateAddress", "ec2:DisassociateAddress"},
			Resource: []string{s.ec2ARN("network-interface")}},
		Statement{Sid: "CancelSpotRequest", Effect: "Allow", Action: []string{"ec2:CancelSpotInstanceRequests"},
			Resource: []string{s.ec2ARN("spot-instances-request")}},
		// A restore (dataSnapshotId) names the snapshot too: only the
		// stack's own, which DLM tags like the volume (copyTags).
		Statement{Sid: "RestoreOwnSnapshot", Effect: "Allow", Action: []string{"ec2:CreateVolume"},
			Resource:  []string{fmt.Sprintf("arn:aws:ec2:%s::snapshot/*", s.Region)},
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:ResourceTag", one)}},
		Statement{Sid: "LaunchUbuntu", Effect: "Allow", Action: []string{"ec2:RunInstances"},
			Resource:  []string{fmt.Sprintf("arn:aws:ec2:%s::image/*", s.Region)},
			Condition: map[string]map[string]any{"StringEquals": {"ec2:Owner": CanonicalAccount}}},
		Statement{Sid: "Budget", Effect: "Allow", Action: []string{"budgets:ModifyBudget", "budgets:TagResource", "budgets:UntagResource"},
			Resource: s.budgets(one)},
		// The snapshot policy (Service Authorization Reference, Amazon
		// Data Lifecycle Manager). CreateLifecyclePolicy lists no resource
		// type ("*"), only aws:RequestTag and aws:TagKeys, and also
		// authorises dlm:TagResource for the tags it carries and
		// iam:PassRole (iam:PassedToService dlm.amazonaws.com) for its
		// execution role.
		Statement{Sid: "CreateSnapshotPolicy", Effect: "Allow", Action: []string{"dlm:CreateLifecyclePolicy"}, Resource: []string{"*"},
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:RequestTag", one)}},
		// The tagging of a new policy carries the stack's tags and the
		// policy has none yet; an existing policy's tags must be the
		// stack's too (IfExists), so no role can retag another stack's.
		// DLM has no key like ec2:CreateAction to tell a create's tagging
		// apart, so an untagged policy made outside the platform could be
		// tagged into the stack; the platform makes none.
		Statement{Sid: "TagSnapshotPolicyOnCreate", Effect: "Allow", Action: []string{"dlm:TagResource"}, Resource: []string{s.dlmPolicyARN()},
			Condition: map[string]map[string]any{
				"StringEquals":         s.tagged("aws:RequestTag", one),
				"StringEqualsIfExists": s.tagged("aws:ResourceTag", one),
			}},
		Statement{Sid: "SnapshotPolicy", Effect: "Allow", Action: DLMOwnedActions, Resource: []string{s.dlmPolicyARN()},
			Condition: map[string]map[string]any{"StringEquals": s.tagged("aws:ResourceTag", one)}},
		Statement{Sid: "RetagSnapshotPolicy", Effect: "Allow", Action: []string{"dlm:TagResource", "dlm:UntagResource"}, Resource: []string{s.dlmPolicyARN()},
			Condition: map[string]map[string]any{
				"StringEquals":                 s.tagged("aws:ResourceTag", one),
				"ForAllValues:StringNotEquals": {"aws:TagKeys": slices.Clone(TagKeys)},
			}},
		// The one role DLM runs the policies as, made by the bootstrap,
		// and only to DLM.
		Statement{Sid: "PassSnapshotRole", Effect: "Allow", Action: []string{"iam:PassRole"}, Resource: []string{s.snapshotRoleARN()},
			Condition: map[string]map[string]any{"StringEquals": {"iam:PassedToService": DLMService}}},
	)
	return PolicyDocument{Version: "2012-10-17", Statement: st}
}

// createActionNames are CreateActions as ec2:CreateAction carries them: the
// API operation's name without the service prefix ("RunInstances").
func createActionNames() []string {
	out := make([]string, 0, len(CreateActions))
	for _, a := range CreateActions {
		out = append(out, strings.TrimPrefix(a, "ec2:"))
	}
	return out
}

func typeARNs(s Scope, types []string) []string {
	out := make([]string, 0, len(types))
	for _, t := range types {
		out = append(out, s.ec2ARN(t))
	}
	return out
}

// CanonicalAccount owns the Ubuntu images the VM boots (see infra/vm).
const CanonicalAccount = "099720109477"

// GitHub's OIDC issuer and the audience its tokens carry for AWS.
const (
	GitHubIssuer   = "token.actions.githubusercontent.com"
	GitHubAudience = "sts.amazonaws.com"
)

// GitHubRepo is the repository whose workflows may assume the roles.
type GitHubRepo struct {
	Name string // owner/name, as GitHub spells it (the sub claim compares case-sensitively)
	// OwnerID and ID are the owner's and the repository's numeric ids
	// (gh api repos/OWNER/REPO --jq '.owner.id, .id'); both or neither.
	OwnerID, ID string
}

// SubjectPrefixes are the forms the sub claim of the repository's tokens
// may start with: repo:<owner>/<name>, and with the ids also the immutable
// form repo:<owner>@<owner id>/<name>@<repository id>. GitHub gives that
// form to repositories created or renamed on or after 2026-07-15, and to
// older ones that opt in ("The immutable ID is appended to each name with
// an @ delimiter": github/docs, content/actions/concepts/security/
// openid-connect.md, "Immutable subject claims"; GitHub changelog
// 2026-04-23).
func (g GitHubRepo) SubjectPrefixes() []string {
	out := []string{"repo:" + g.Name}
	if g.OwnerID != "" && g.ID != "" {
		owner, name, _ := strings.Cut(g.Name, "/")
		out = append(out, "repo:"+owner+"@"+g.OwnerID+"/"+name+"@"+g.ID)
	}
	return out
}

// TrustPolicy lets GitHub Actions runs of repo whose token subject is
// exactly one of subjects, in either form of SubjectPrefixes, assume a
// role, and nobody else: StringEquals, no wildcards.
func TrustPolicy(providerARN string, repo GitHubRepo, subjects []string) PolicyDocument {
	var subs []string
	for _, prefix := range repo.SubjectPrefixes() {
		for _, s := range subjects {
			subs = append(subs, prefix+":"+s)
		}
	}
	slices.Sort(subs)
	return PolicyDocument{Version: "2012-10-17", Statement: []Statement{{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": providerARN},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]map[string]any{"StringEquals": {
			GitHubIssuer + ":aud": GitHubAudience,
			GitHubIssuer + ":sub": subs,
		}},
	}}}
}

// Token subjects (GitHub docs, "About security hardening with OpenID
// Connect", example subject claims): a job that names an environment gets
// repo:<r>:environment:<name>, whatever branch it runs on; a pull_request
// job gets repo:<r>:pull_request; any other job repo:<r>:ref:<ref>.
const (
	SubjectPullRequest = "pull_request"
	SubjectMain        = "ref:refs/heads/main"
)

// EnvironmentSubject is the subject of a job bound to a GitHub environment.
func EnvironmentSubject(env string) string { return "environment:" + env }

// RoleSpec is one CI role: who may assume it, which stacks it reaches,
// and whether it may change them.
type RoleSpec struct {
	Name     string // <project>-<Name>
	Purpose  string
	Subjects []string
	Stacks   []string
	Deploy   bool
}

// Roles are the CI roles for stacks: one deploy role per stack, trusted
// only by jobs of that stack's GitHub environment; a read-only preview role
// for pull requests, reaching previewStacks only; and a read-only drift
// role for the scheduled check on main, reaching driftStacks only.
func Roles(stacks, previewStacks, driftStacks []string) []RoleSpec {
	var out []RoleSpec
	for _, st := range stacks {
		out = append(out, RoleSpec{
			Name: "deploy-" + st, Purpose: "pulumi preview/up/destroy/refresh of stack " + st + " from the deploy workflow",
			Subjects: []string{EnvironmentSubject(st)}, Stacks: []string{st}, Deploy: true,
		})
	}
	if len(previewStacks) > 0 {
		out = append(out, RoleSpec{Name: "preview", Purpose: "pulumi preview from pull requests (read only)",
			Subjects: []string{SubjectPullRequest}, Stacks: previewStacks})
	}
	if len(driftStacks) > 0 {
		out = append(out, RoleSpec{Name: "drift", Purpose: "the scheduled drift check on main (read only)",
			Subjects: []string{SubjectMain}, Stacks: driftStacks})
	}
	return out
}

// Policy is the role's permission policy.
func (r RoleSpec) Policy(s Scope) PolicyDocument {
	if r.Deploy {
		return DeployPolicy(s, r.Stacks[0])
	}
	return ReadPolicy(s, r.Stacks)
}
