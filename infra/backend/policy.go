package backend

import (
	"encoding/json"
	"fmt"
	"slices"

	"microk8s-platform/infra/network"
)

// PolicyDocument is an IAM policy, typed so the tests can read it back.
type PolicyDocument struct {
	Version   string
	Statement []Statement
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                    `json:",omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string]any            `json:",omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:",omitempty"`
	Condition map[string]map[string]any `json:",omitempty"`
}

// JSON renders the document.
func (d PolicyDocument) JSON() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // only strings and maps: cannot fail
	}
	return string(b)
}

// Scope is what the CI roles may touch: the names and ARNs of this
// project's state, lock, keys and cloud resources.
type Scope struct {
	Project, Account, Region string
	Bucket, StatePrefix      string
	LockTable                string
	StateKeyARN              string // the bucket's SSE-KMS key
	SecretsKeyARN            string // the stacks' secrets provider key
}

func (s Scope) bucketARN() string { return "arn:aws:s3:::" + s.Bucket }
func (s Scope) stateARN() string  { return s.bucketARN() + "/" + s.StatePrefix + "/*" }
func (s Scope) tableARN() string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.Region, s.Account, s.LockTable)
}
func (s Scope) ec2ARN(kind string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/*", s.Region, s.Account, kind)
}

// projectTag is the condition "the resource carries our project tag".
func (s Scope) projectTag(key string) map[string]map[string]any {
	return map[string]map[string]any{"StringEquals": {key + "/project": s.Project}}
}

// readStatements are what both roles need: read the stacks' state (a
// self-managed backend's preview takes no lock file, so it writes nothing),
// decrypt their secrets, describe what the program manages, and open and close the
// runner's temporary SSH/API rule on the automation security group only.
func (s Scope) readStatements() []Statement {
	return []Statement{
		{Sid: "ListState", Effect: "Allow", Action: []string{"s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning"},
			Resource:  []string{s.bucketARN()},
			Condition: map[string]map[string]any{"StringLike": {"s3:prefix": []string{s.StatePrefix, s.StatePrefix + "/*"}}}},
		{Sid: "ReadState", Effect: "Allow", Action: []string{"s3:GetObject", "s3:GetObjectVersion"}, Resource: []string{s.stateARN()}},
		{Sid: "UseKeys", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"},
			Resource: []string{s.StateKeyARN, s.SecretsKeyARN}},
		{Sid: "Describe", Effect: "Allow", Action: []string{
			"ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:DescribeSubnets", "ec2:DescribeInternetGateways",
			"ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules",
			"ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceTypes",
			"ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeVolumes", "ec2:DescribeAddresses",
			"ec2:DescribeAddressesAttribute", "ec2:DescribeKeyPairs", "ec2:DescribeImages", "ec2:DescribeTags",
			"ec2:DescribeNetworkInterfaces", "ec2:DescribeAvailabilityZones", "ec2:DescribeSpotInstanceRequests",
			"sts:GetCallerIdentity",
		}, Resource: []string{"*"}}, // Describe* calls support no resource-level scoping
		{Sid: "ReadBudget", Effect: "Allow", Action: []string{"budgets:ViewBudget", "budgets:ListTagsForResource"},
			Resource: []string{fmt.Sprintf("arn:aws:budgets::%s:budget/%s-*", s.Account, s.Project)}},
		{Sid: "RunnerAccess", Effect: "Allow", Action: []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"},
			Resource:  []string{s.ec2ARN("security-group")},
			Condition: map[string]map[string]any{"StringEquals": {"aws:ResourceTag/" + network.AutomationTagKey: network.AutomationTag}}},
	}
}

// PreviewPolicy is the pull-request role's: read only, plus the runner's
// temporary access rule.
func PreviewPolicy(s Scope) PolicyDocument {
	return PolicyDocument{Version: "2012-10-17", Statement: s.readStatements()}
}

// createActions make new tagged resources; the request must carry our
// project tag.
var createActions = []string{
	"ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateInternetGateway", "ec2:CreateRouteTable",
	"ec2:CreateSecurityGroup", "ec2:AllocateAddress", "ec2:ImportKeyPair", "ec2:RunInstances",
}

// ownedActions change or delete resources that carry our project tag.
var ownedActions = []string{
	"ec2:ModifyVpcAttribute", "ec2:DeleteVpc", "ec2:ModifySubnetAttribute", "ec2:DeleteSubnet",
	"ec2:AttachInternetGateway", "ec2:DetachInternetGateway", "ec2:DeleteInternetGateway",
	"ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute", "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable", "ec2:DeleteRouteTable",
	"ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress",
	"ec2:RevokeSecurityGroupEgress", "ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptionsIngress",
	"ec2:UpdateSecurityGroupRuleDescriptionsEgress", "ec2:DeleteSecurityGroup",
	"ec2:AssociateAddress", "ec2:DisassociateAddress", "ec2:ReleaseAddress", "ec2:DeleteKeyPair",
	"ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances", "ec2:ModifyInstanceAttribute",
	"ec2:ModifyInstanceMetadataOptions", "ec2:ModifyVolume", "ec2:CreateTags", "ec2:DeleteTags",
}

// DeployPolicy is the deploy role's: the reads, writing state, the lock
// table, encrypting secrets, and managing only resources tagged with this
// project (created with the tag, changed only while they carry it).
func DeployPolicy(s Scope) PolicyDocument {
	st := s.readStatements()
	st = append(st,
		Statement{Sid: "WriteState", Effect: "Allow", Action: []string{"s3:PutObject", "s3:DeleteObject"}, Resource: []string{s.stateARN()}},
		Statement{Sid: "EncryptSecrets", Effect: "Allow", Action: []string{"kms:Encrypt"}, Resource: []string{s.SecretsKeyARN}},
		Statement{Sid: "DeployLock", Effect: "Allow", Action: []string{
			"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan", "dynamodb:DescribeTable",
		}, Resource: []string{s.tableARN()}},
		Statement{Sid: "CreateTagged", Effect: "Allow", Action: createActions,
			Resource: []string{s.ec2ARN("*")}, Condition: s.projectTag("aws:RequestTag")},
		// RunInstances also names the AMI, subnet, group and key it uses.
		Statement{Sid: "LaunchFromOwned", Effect: "Allow", Action: []string{"ec2:RunInstances"},
			Resource: []string{s.ec2ARN("subnet"), s.ec2ARN("security-group"), s.ec2ARN("key-pair")}, Condition: s.projectTag("aws:ResourceTag")},
		Statement{Sid: "LaunchUbuntu", Effect: "Allow", Action: []string{"ec2:RunInstances"},
			Resource:  []string{fmt.Sprintf("arn:aws:ec2:%s::image/*", s.Region)},
			Condition: map[string]map[string]any{"StringEquals": {"ec2:Owner": CanonicalAccount}}},
		Statement{Sid: "ChangeOwned", Effect: "Allow", Action: ownedActions,
			Resource: []string{s.ec2ARN("*")}, Condition: s.projectTag("aws:ResourceTag")},
		Statement{Sid: "Budget", Effect: "Allow", Action: []string{
			"budgets:ViewBudget", "budgets:ModifyBudget", "budgets:TagResource", "budgets:UntagResource",
		}, Resource: []string{fmt.Sprintf("arn:aws:budgets::%s:budget/%s-*", s.Account, s.Project)}},
	)
	return PolicyDocument{Version: "2012-10-17", Statement: st}
}

// CanonicalAccount owns the Ubuntu images the VM boots (see infra/vm).
const CanonicalAccount = "099720109477"

// GitHub's OIDC issuer and the audience its tokens carry for AWS.
const (
	GitHubIssuer   = "token.actions.githubusercontent.com"
	GitHubAudience = "sts.amazonaws.com"
)

// TrustPolicy lets GitHub Actions runs of repo whose token subject matches
// one of subjects assume a role, and nobody else.
func TrustPolicy(providerARN, repo string, subjects []string) PolicyDocument {
	subs := make([]string, 0, len(subjects))
	for _, s := range subjects {
		subs = append(subs, "repo:"+repo+":"+s)
	}
	slices.Sort(subs)
	return PolicyDocument{Version: "2012-10-17", Statement: []Statement{{
		Effect:    "Allow",
		Principal: map[string]any{"Federated": providerARN},
		Action:    []string{"sts:AssumeRoleWithWebIdentity"},
		Condition: map[string]map[string]any{
			"StringEquals": {GitHubIssuer + ":aud": GitHubAudience},
			"StringLike":   {GitHubIssuer + ":sub": subs},
		},
	}}}
}

// PreviewSubjects are the runs the preview role trusts: pull requests, and
// the scheduled drift check on main.
var PreviewSubjects = []string{"pull_request", "ref:refs/heads/main"}

// DeploySubjects are the runs the deploy role trusts: jobs bound to the
// GitHub environment of a stack (deploy.yml), whose protection rules decide
// who may run them.
func DeploySubjects(stacks []string) []string {
	var out []string
	for _, s := range stacks {
		out = append(out, "environment:"+s)
	}
	return out
}
