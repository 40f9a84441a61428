package backend

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/tags"
	"microk8s-platform/infra/vm"
)

const project = "microk8s-platform-backend"

func bootstrap(t *testing.T, extra map[string]string) (*mt.Mocks, error) {
	t.Helper()
	c := mt.StackFileIn(t, "stacks/backend", "bootstrap")
	set := map[string]string{project + ":githubRepository": "acme/microk8s-platform"}
	for k, v := range extra {
		set[project+":"+k] = v
	}
	return mt.RunProject(t, project, "bootstrap", c.Set(set), Run)
}

func mustBootstrap(t *testing.T) *mt.Mocks {
	t.Helper()
	m, err := bootstrap(t, nil)
	if err != nil {
		t.Fatalf("bootstrap failed: %v", err)
	}
	return m
}

func policyOf(t *testing.T, r mt.Resource, field string) PolicyDocument {
	t.Helper()
	var d PolicyDocument
	if err := json.Unmarshal([]byte(mt.Str(r.Inputs, field)), &d); err != nil {
		t.Fatalf("%s %s: %s is not a policy: %v", r.Type, r.Name, field, err)
	}
	return d
}

func TestStateBucketIsPrivateVersionedEncryptedAndTLSOnly(t *testing.T) {
	m := mustBootstrap(t)
	bucket := m.One(t, "aws:s3/bucketV2:BucketV2", "backend-state")
	if got := mt.Str(bucket.Inputs, "bucket"); got != "microk8s-platform-state-"+mt.Account {
		t.Errorf("bucket name %q", got)
	}
	pab := m.One(t, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "backend-state")
	for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
		if mt.Str(pab.Inputs, k) != "true" {
			t.Errorf("public access block %s = %q", k, mt.Str(pab.Inputs, k))
		}
	}
	if got := mt.Str(m.One(t, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "backend-state").Inputs, "rule.objectOwnership"); got != "BucketOwnerEnforced" {
		t.Errorf("object ownership %q", got)
	}
	if got := mt.Str(m.One(t, "aws:s3/bucketVersioningV2:BucketVersioningV2", "backend-state").Inputs, "versioningConfiguration.status"); got != "Enabled" {
		t.Errorf("versioning %q", got)
	}
	sse := m.One(t, "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2", "backend-state")
	stateKey := m.One(t, "aws:kms/key:Key", "backend-state")
	rule := "rules[0].applyServerSideEncryptionByDefault."
	if mt.Str(sse.Inputs, rule+"sseAlgorithm") != "aws:kms" || !strings.Contains(mt.Str(sse.Inputs, rule+"kmsMasterKeyId"), "backend-state") {
		t.Errorf("bucket encryption %v, want aws:kms with the state key", mt.Get(sse.Inputs, "rules[0]"))
	}
	if mt.Str(stateKey.Inputs, "enableKeyRotation") != "true" {
		t.Error("state key rotation is off")
	}

	policy := policyOf(t, m.One(t, "aws:s3/bucketPolicy:BucketPolicy", "backend-state"), "policy")
	var tls bool
	for _, s := range policy.Statement {
		tls = tls || (s.Effect == "Deny" && slices.Contains(s.Action, "s3:*") && s.Condition["Bool"]["aws:SecureTransport"] == "false" &&
			slices.Contains(s.Resource, "arn:aws:s3:::microk8s-platform-state-"+mt.Account+"/*"))
	}
	if !tls {
		t.Errorf("bucket policy does not deny plain HTTP: %+v", policy)
	}

	lc := m.One(t, "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "backend-state")
	if mt.Str(lc.Inputs, "rules[0].status") != "Enabled" || mt.Str(lc.Inputs, "rules[0].noncurrentVersionExpiration.noncurrentDays") != "90" {
		t.Errorf("lifecycle %v", mt.Get(lc.Inputs, "rules[0]"))
	}
}

func TestStatefulResourcesAreProtected(t *testing.T) {
	m := mustBootstrap(t)
	for _, r := range []mt.Resource{
		m.One(t, "aws:s3/bucketV2:BucketV2", "backend-state"),
		m.One(t, "aws:kms/key:Key", "backend-state"),
		m.One(t, "aws:kms/key:Key", "backend-secrets-dev"),
		m.One(t, "aws:kms/key:Key", "backend-secrets-prod"),
		// The alias is what each stack file's secretsprovider names.
		m.One(t, "aws:kms/alias:Alias", "backend-secrets-dev"),
		m.One(t, "aws:kms/alias:Alias", "backend-secrets-prod"),
		m.One(t, "aws:dynamodb/table:Table", "backend-lock"),
	} {
		if !r.Protect {
			t.Errorf("%s %s is not protected: a destroy would lose every stack's state", r.Type, r.Name)
		}
	}
}

func TestLockTable(t *testing.T) {
	m := mustBootstrap(t)
	table := m.One(t, "aws:dynamodb/table:Table", "backend-lock")
	want := map[string]string{
		"name": "microk8s-platform-locks", "billingMode": "PAY_PER_REQUEST", "hashKey": LockHashKey,
		"attributes[0].name": LockHashKey, "attributes[0].type": "S",
		"pointInTimeRecovery.enabled": "true", "serverSideEncryption.enabled": "true",
		"ttl.attributeName": TTLKey, "ttl.enabled": "true", "deletionProtectionEnabled": "true",
	}
	for path, v := range want {
		if got := mt.Str(table.Inputs, path); got != v {
			t.Errorf("table %s = %q, want %q", path, got, v)
		}
	}
	if len(mt.Get(table.Inputs, "attributes").ArrayValue()) != 1 {
		t.Error("the table declares attributes other than its key")
	}
}

func TestOutputsSayHowToUseTheBackend(t *testing.T) {
	var b *Backend
	_, err := mt.RunProject(t, project, "bootstrap", mt.Config{Values: map[string]string{}}, func(ctx *pulumi.Context) error {
		var err error
		b, err = New(ctx, "backend", Args{
			Owner: tagsOwner(), Account: mt.Account, Region: "eu-west-1", Bucket: "acme-state", StatePrefix: "platform",
			LockTable: "locks", NoncurrentDays: 30, GitHubRepo: GitHubRepo{Name: "acme/platform"}, Stacks: []string{"dev"},
			PreviewStacks: []string{"dev"},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for o, want := range map[pulumi.StringInput]string{
		b.LoginURL:                "s3://acme-state/platform?region=eu-west-1",
		b.SecretsProviders["dev"]: "awskms://alias/microk8s-platform-secrets-dev?region=eu-west-1",
		b.LockTable:               "locks",
	} {
		v, _, err := mt.Await(o.ToStringOutput())
		if err != nil || v != want {
			t.Errorf("output %v (%v), want %s", v, err, want)
		}
	}
	if len(b.RoleARNs) != 2 || b.RoleARNs["deploy-dev"] == nil || b.RoleARNs["preview"] == nil {
		t.Errorf("role outputs %v, want deploy-dev and preview", b.RoleARNs)
	}
	for _, o := range b.RoleARNs {
		if v, _, _ := mt.Await(o.ToStringOutput()); !strings.HasPrefix(v.(string), "arn:aws:iam:") {
			t.Errorf("role ARN output %v", v)
		}
	}
}

func TestRolesTrustOnlyThisRepositorysWorkflows(t *testing.T) {
	m := mustBootstrap(t)
	oidc := m.One(t, "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "backend-github")
	if mt.Str(oidc.Inputs, "url") != "https://"+GitHubIssuer || !slices.Equal(mt.Strings(oidc.Inputs, "clientIdLists"), []string{GitHubAudience}) {
		t.Errorf("OIDC provider %v", oidc.Inputs)
	}
	// Four CI roles, and DLM's snapshot role (TestSnapshotRoleIsDLMsAlone),
	// which trusts no GitHub token.
	if n := len(m.ByType("aws:iam/role:Role")); n != 5 {
		t.Errorf("%d roles, want deploy-dev, deploy-prod, preview, drift and snapshots", n)
	}
	if strings.Contains(mt.Str(m.One(t, "aws:iam/role:Role", "backend-snapshots").Inputs, "assumeRolePolicy"), GitHubIssuer) {
		t.Error("GitHub's tokens may assume the snapshot role")
	}
	for role, subs := range map[string][]string{
		"backend-preview":     {"repo:acme/microk8s-platform:pull_request"},
		"backend-drift":       {"repo:acme/microk8s-platform:ref:refs/heads/main"},
		"backend-deploy-dev":  {"repo:acme/microk8s-platform:environment:dev"},
		"backend-deploy-prod": {"repo:acme/microk8s-platform:environment:prod"},
	} {
		trust := policyOf(t, m.One(t, "aws:iam/role:Role", role), "assumeRolePolicy")
		if len(trust.Statement) != 1 {
			t.Fatalf("%s: %d trust statements", role, len(trust.Statement))
		}
		s := trust.Statement[0]
		if s.Effect != "Allow" || !slices.Equal(s.Action, []string{"sts:AssumeRoleWithWebIdentity"}) || !strings.Contains(s.Principal["Federated"].(string), "openidconnectprovider") {
			t.Errorf("%s trusts %+v", role, s)
		}
		if s.Condition["StringEquals"][GitHubIssuer+":aud"] != GitHubAudience || len(s.Condition) != 1 {
			t.Errorf("%s: audience not pinned, or subjects not exact: %v", role, s.Condition)
		}
		var got []string
		for _, v := range s.Condition["StringEquals"][GitHubIssuer+":sub"].([]any) {
			got = append(got, v.(string))
			if strings.Contains(v.(string), "*") {
				t.Errorf("%s: wildcard subject %s", role, v)
			}
		}
		if !slices.Equal(got, subs) {
			t.Errorf("%s trusts subjects %v, want %v", role, got, subs)
		}
	}
}

func TestNoPolicyGrantsEverythingOnEverything(t *testing.T) {
	m := mustBootstrap(t)
	policies := m.ByType("aws:iam/rolePolicy:RolePolicy")
	if len(policies) != 4 {
		t.Fatalf("%d role policies", len(policies))
	}
	for _, r := range policies {
		for _, s := range policyOf(t, r, "policy").Statement {
			if s.Effect != "Allow" {
				continue
			}
			for _, a := range s.Action {
				if a == "*" || strings.HasSuffix(a, ":*") {
					t.Errorf("%s statement %s grants every action of a service: %s", r.Name, s.Sid, a)
				}
				// On "*": the Describe calls, which support no resource-level
				// permissions, and DLM's create, which names no resource type
				// either (Service Authorization Reference) and is held to the
				// stack's tags instead.
				tagged := a == "dlm:CreateLifecyclePolicy" && s.Condition["StringEquals"]["aws:RequestTag/stack"] != nil
				if slices.Contains(s.Resource, "*") && !strings.Contains(a, ":Describe") && !tagged {
					t.Errorf("%s statement %s grants %s on every resource", r.Name, s.Sid, a)
				}
			}
			if len(s.Resource) == 0 {
				t.Errorf("%s statement %s names no resource", r.Name, s.Sid)
			}
		}
	}
}

func TestExistingOIDCProviderIsReused(t *testing.T) {
	arn := "arn:aws:iam::" + mt.Account + ":oidc-provider/token.actions.githubusercontent.com"
	m, err := bootstrap(t, map[string]string{"githubOidcProviderArn": arn})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.ByType("aws:iam/openIdConnectProvider:OpenIdConnectProvider")); n != 0 {
		t.Errorf("created %d OIDC providers although one exists", n)
	}
	trust := policyOf(t, m.One(t, "aws:iam/role:Role", "backend-deploy-dev"), "assumeRolePolicy")
	if trust.Statement[0].Principal["Federated"] != arn {
		t.Errorf("deploy role trusts %v", trust.Statement[0].Principal)
	}
}

func TestInvalidConfigurationNamesEveryProblem(t *testing.T) {
	_, err := bootstrap(t, map[string]string{
		"githubRepository": "not a repo", "stateBucket": "Bad_Bucket", "lockTable": "x",
		"noncurrentVersionDays": "0", "stacks": `["dev","no spaces"]`, "githubOidcProviderArn": "oidc",
		"previewStacks": `["prod2"]`, "spotServiceLinkedRoleExists": "maybe",
		"githubOwnerId": "acme", "githubRepositoryId": "12x",
	})
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{
		`githubRepository "not a repo"`, `stateBucket "Bad_Bucket"`, `lockTable "x"`,
		`noncurrentVersionDays "0"`, `stacks "no spaces"`, `githubOidcProviderArn "oidc"`,
		`previewStacks "prod2"`, `spotServiceLinkedRoleExists "maybe"`,
		`githubOwnerId "acme"`, `githubRepositoryId "12x"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if _, err := mt.RunProject(t, project, "bootstrap", mt.StackFileIn(t, "stacks/backend", "bootstrap"), Run); err == nil || !strings.Contains(err.Error(), "githubRepository") {
		t.Errorf("missing githubRepository: %v", err)
	}
}

// The repository's ids come in pairs: one alone cannot form the immutable
// subject, so it is refused rather than half used; both reach every role's
// trust policy next to the name-only form.
func TestGitHubIDsReachTheTrustPolicies(t *testing.T) {
	_, err := bootstrap(t, map[string]string{"githubOwnerId": "123456"})
	if err == nil || !strings.Contains(err.Error(), "set both or neither") {
		t.Errorf("githubOwnerId alone: %v", err)
	}
	m, err := bootstrap(t, map[string]string{"githubOwnerId": "123456", "githubRepositoryId": "456789"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.ByType("aws:iam/role:Role") {
		if r.Name == "backend-snapshots" {
			continue // DLM's, not GitHub's
		}
		subs := policyOf(t, r, "assumeRolePolicy").Statement[0].Condition["StringEquals"][GitHubIssuer+":sub"]
		var legacy, immutable int
		for _, s := range subs.([]any) {
			switch {
			case strings.HasPrefix(s.(string), "repo:acme@123456/microk8s-platform@456789:"):
				immutable++
			case strings.HasPrefix(s.(string), "repo:acme/microk8s-platform:"):
				legacy++
			}
		}
		if legacy == 0 || legacy != immutable || legacy+immutable != len(subs.([]any)) {
			t.Errorf("%s trusts %v: want each subject in both forms", r.Name, subs)
		}
	}
}

// The first spot request made through the API needs the EC2 Spot
// service-linked role to exist already (EC2 User Guide, "Service-linked
// role for Spot Instance requests": EC2 creates it for console requests;
// with the CLI or an API, "you must first ensure that this role exists").
// The bootstrap creates exactly that role, so no CI role needs
// iam:CreateServiceLinkedRole; an account that has it says so.
func TestSpotServiceLinkedRole(t *testing.T) {
	m := mustBootstrap(t)
	slr := m.One(t, "aws:iam/serviceLinkedRole:ServiceLinkedRole", "backend-spot")
	if got := mt.Str(slr.Inputs, "awsServiceName"); got != "spot.amazonaws.com" {
		t.Errorf("service-linked role for %q", got)
	}
	// No CI role may do anything in IAM but pass the snapshot role to
	// DLM (TestSnapshotRoleIsDLMsAlone).
	for _, r := range m.ByType("aws:iam/rolePolicy:RolePolicy") {
		for _, s := range policyOf(t, r, "policy").Statement {
			for _, a := range s.Action {
				if strings.HasPrefix(a, "iam:") && (a != "iam:PassRole" || s.Sid != "PassSnapshotRole") {
					t.Errorf("%s grants %s (%s)", r.Name, a, s.Sid)
				}
			}
		}
	}
	m, err := bootstrap(t, map[string]string{"spotServiceLinkedRoleExists": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(m.ByType("aws:iam/serviceLinkedRole:ServiceLinkedRole")); n != 0 {
		t.Errorf("created the spot role although it exists (%d)", n)
	}
}

// The role DLM runs the stacks' snapshot policies as: the name the program
// derives (vm.SnapshotRoleARN), trusted by DLM alone, with the AWS managed
// policy for it; each deploy role may pass exactly this role, and only to
// DLM; the read-only roles may not pass it at all.
func TestSnapshotRoleIsDLMsAlone(t *testing.T) {
	m := mustBootstrap(t)
	role := m.One(t, "aws:iam/role:Role", "backend-snapshots")
	if got := mt.Str(role.Inputs, "name"); got != vm.SnapshotRoleName(Platform) {
		t.Errorf("snapshot role named %q, the program passes %q", got, vm.SnapshotRoleName(Platform))
	}
	trust := policyOf(t, role, "assumeRolePolicy")
	if len(trust.Statement) != 1 || !reflect.DeepEqual(trust.Statement[0].Principal, map[string]any{"Service": "dlm.amazonaws.com"}) ||
		!slices.Equal(trust.Statement[0].Action, []string{"sts:AssumeRole"}) {
		t.Errorf("trust policy %+v", trust)
	}
	att := m.One(t, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "backend-snapshots")
	if got := mt.Str(att.Inputs, "policyArn"); got != "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole" {
		t.Errorf("attached %q", got)
	}
	s := testScope()
	pass := func(role, service string) request {
		return request{"iam:PassRole", "arn:aws:iam::" + mt.Account + ":role/" + role, map[string][]string{"iam:PassedToService": {service}}}
	}
	for _, spec := range Roles(stacks, []string{"dev"}, []string{"prod"}) {
		d := spec.Policy(s)
		for _, c := range []struct {
			r    request
			want bool
		}{
			{pass(vm.SnapshotRoleName(Platform), "dlm.amazonaws.com"), spec.Deploy},
			{pass(vm.SnapshotRoleName(Platform), "ec2.amazonaws.com"), false},
			{pass(Platform+"-deploy-prod", "dlm.amazonaws.com"), false},
			{pass("AWSDataLifecycleManagerDefaultRole", "dlm.amazonaws.com"), false},
		} {
			if got := allowed(t, d, c.r); got != c.want {
				t.Errorf("%s: %v allowed %v, want %v", spec.Name, c.r, got, c.want)
			}
		}
	}
}

// Each stack has its own secrets key, so a role that decrypts dev cannot
// decrypt prod; each deploy role's policy names its own key only.
func TestEachStackHasItsOwnSecretsKey(t *testing.T) {
	m := mustBootstrap(t)
	for _, st := range []string{"dev", "prod"} {
		alias := m.One(t, "aws:kms/alias:Alias", "backend-secrets-"+st)
		if got := mt.Str(alias.Inputs, "name"); got != SecretsAlias(Platform, st) {
			t.Errorf("alias %q", got)
		}
		if !strings.Contains(mt.Str(alias.Inputs, "targetKeyId"), "backend-secrets-"+st) {
			t.Errorf("alias %s targets %q", st, mt.Str(alias.Inputs, "targetKeyId"))
		}
		p := policyOf(t, m.One(t, "aws:iam/rolePolicy:RolePolicy", "backend-deploy-"+st), "policy")
		var keys []string
		for _, s := range p.Statement {
			if s.Sid == "DecryptSecrets" {
				keys = s.Resource
			}
		}
		if len(keys) != 1 || !strings.Contains(keys[0], "backend-secrets-"+st) {
			t.Errorf("deploy-%s decrypts %v", st, keys)
		}
	}
}

func tagsOwner() tags.Owner { return tags.Owner{Project: Platform, Stack: "bootstrap"} }
