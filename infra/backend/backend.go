// Package backend bootstraps where the platform's stacks keep their state
// and how deploys are serialised: an S3 bucket for Pulumi's self-managed
// backend (versioned, SSE-KMS with its own key, private, TLS only, old
// versions expiring), a DynamoDB table for the deploy lock (scripts/stacklock),
// one KMS key per stack for its secrets provider, EC2 Spot's
// service-linked role, and GitHub OIDC roles for CI: one deploy role per
// stack, trusted only by jobs of that stack's GitHub environment, and two
// read-only roles, for pull-request previews (dev) and the drift check on
// main (prod). Each role reaches only its stacks' state files, lock items,
// secrets key, budget and the EC2 resources tagged with its stack; the
// tests derive what that must be from the resources the platform program
// declares.
//
// It runs once per account from stacks/backend with local state (it cannot
// keep its state in the bucket it creates).
package backend

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
	"microk8s-platform/infra/vm"
)

// Attribute names of the lock table; scripts/stacklock writes them.
const (
	LockHashKey = "LockID"
	TTLKey      = "expires_at" // epoch seconds; DynamoDB deletes items some time after
)

// GitHub's OIDC certificate thumbprints (AWS no longer checks them for this
// issuer, but the API still wants one).
var gitHubThumbprints = []string{"6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"}

// MaxSessionSeconds is how long a CI role's session may last; the
// workflows ask for exactly this (role-duration-seconds) and end their jobs
// before it runs out (timeout-minutes).
const MaxSessionSeconds = 3600

// SpotServiceName is the service principal of EC2 Spot's service-linked role.
const SpotServiceName = "spot.amazonaws.com"

// DLMManagedPolicyARN is the AWS managed policy for the role DLM runs
// snapshot policies as (EBS User Guide, "AWS managed policies for Amazon
// Data Lifecycle Manager": AWSDataLifecycleManagerServiceRole, path
// /service-role/; moto 5.2.1's copy of AWS's managed policies has it under
// that path).
const DLMManagedPolicyARN = "arn:aws:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"

// SnapshotTrustPolicy lets DLM, and nobody else, assume the snapshot role.
func SnapshotTrustPolicy() PolicyDocument {
	return PolicyDocument{Version: "2012-10-17", Statement: []Statement{{
		Effect: "Allow", Principal: map[string]any{"Service": DLMService}, Action: []string{"sts:AssumeRole"},
	}}}
}

// SecretsAlias is the KMS alias of a stack's secrets key.
func SecretsAlias(project, stack string) string { return "alias/" + project + "-secrets-" + stack }

// Args configure the backend.
type Args struct {
	Owner   tags.Owner
	Account string // AWS account id
	Region  string
	// Bucket is the state bucket's (globally unique) name.
	Bucket string
	// StatePrefix is the folder in the bucket the platform's stacks use.
	StatePrefix string
	LockTable   string
	// NoncurrentDays keeps replaced state versions this long.
	NoncurrentDays int
	// GitHubRepo is the repository whose workflows may assume the roles.
	GitHubRepo GitHubRepo
	// Stacks get one GitHub environment, deploy role and secrets key each.
	Stacks []string
	// PreviewStacks are previewed on pull requests (read-only role);
	// DriftStacks are checked for drift from main (read-only role).
	PreviewStacks, DriftStacks []string
	// CreateSpotServiceLinkedRole creates AWSServiceRoleForEC2Spot (false
	// when the account already has it).
	CreateSpotServiceLinkedRole bool
	// ExistingOIDCProviderARN reuses the account's GitHub OIDC provider
	// (an account can have only one per issuer); empty creates it.
	ExistingOIDCProviderARN string
}

// Backend is the bootstrapped state backend.
type Backend struct {
	pulumi.ResourceState
	LoginURL pulumi.StringOutput
	// SecretsProviders: stack -> the --secrets-provider of its stack init.
	SecretsProviders pulumi.StringMap
	LockTable        pulumi.StringOutput
	// RoleARNs: role name (deploy-<stack>, preview, drift) -> ARN.
	RoleARNs pulumi.StringMap
	// SnapshotRoleARN is the role DLM runs the snapshot policies as.
	SnapshotRoleARN pulumi.StringOutput
}

// New declares the backend.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Backend, error) {
	b := &Backend{}
	if err := ctx.RegisterComponentResource("microk8s-platform:backend:StateBackend", name, b, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(b)
	keep := pulumi.Protect(true) // losing these loses every stack's state
	o := args.Owner

	key := func(n, desc string) (*kms.Key, error) {
		return kms.NewKey(ctx, name+"-"+n, &kms.KeyArgs{
			Description:          pulumi.String(desc),
			EnableKeyRotation:    pulumi.Bool(true),
			DeletionWindowInDays: pulumi.Int(30),
			Tags:                 o.AWS(n + "-key"),
		}, p, keep)
	}
	stateKey, err := key("state", "Encrypts the Pulumi state bucket and the lock table of "+o.Project)
	if err != nil {
		return nil, err
	}
	// One secrets key per stack, so a role that may decrypt dev's secrets
	// cannot read prod's. The alias is what Pulumi.<stack>.yaml's
	// secretsprovider names: losing it breaks every pulumi command on the
	// stack, so it is protected like the key.
	secretsKeys := map[string]*kms.Key{}
	secretsProviders := pulumi.StringMap{}
	for _, st := range args.Stacks {
		k, err := key("secrets-"+st, "Secrets provider of the "+o.Project+" stack "+st)
		if err != nil {
			return nil, err
		}
		alias, err := kms.NewAlias(ctx, name+"-secrets-"+st, &kms.AliasArgs{
			Name:        pulumi.String(SecretsAlias(o.Project, st)),
			TargetKeyId: k.KeyId,
		}, p, keep)
		if err != nil {
			return nil, err
		}
		secretsKeys[st] = k
		secretsProviders[st] = pulumi.Sprintf("awskms://%s?region=%s", alias.Name, args.Region)
	}
	if args.CreateSpotServiceLinkedRole {
		// EC2 needs AWSServiceRoleForEC2Spot before the first spot request
		// made through the API; it creates the role itself only for the
		// console (EC2 User Guide, "Service-linked role for Spot Instance
		// requests"). Creating it here keeps iam:CreateServiceLinkedRole
		// out of the deploy roles.
		if _, err := iam.NewServiceLinkedRole(ctx, name+"-spot", &iam.ServiceLinkedRoleArgs{
			AwsServiceName: pulumi.String(SpotServiceName),
			Description:    pulumi.String("EC2 Spot requests of " + o.Project),
		}, p); err != nil {
			return nil, err
		}
	}

	// The role DLM takes the stacks' daily data-volume snapshots as (infra/vm
	// awsSnapshotPolicy): made here because the CI roles cannot create
	// roles; each deploy role may pass exactly this one, to DLM only.
	snapshotRole, err := iam.NewRole(ctx, name+"-snapshots", &iam.RoleArgs{
		Name:             pulumi.String(vm.SnapshotRoleName(o.Project)),
		Description:      pulumi.String("Amazon Data Lifecycle Manager: daily snapshots of the data volumes of " + o.Project),
		AssumeRolePolicy: pulumi.String(SnapshotTrustPolicy().JSON()),
		Tags:             o.AWS("snapshots-role"),
	}, p)
	if err != nil {
		return nil, err
	}
	if _, err := iam.NewRolePolicyAttachment(ctx, name+"-snapshots", &iam.RolePolicyAttachmentArgs{
		Role:      snapshotRole.Name,
		PolicyArn: pulumi.String(DLMManagedPolicyARN),
	}, p); err != nil {
		return nil, err
	}

	bucket, err := s3.NewBucketV2(ctx, name+"-state", &s3.BucketV2Args{
		Bucket: pulumi.String(args.Bucket),
		Tags:   o.AWS("state"),
	}, p, keep)
	if err != nil {
		return nil, err
	}
	onBucket := []pulumi.ResourceOption{p, pulumi.DependsOn([]pulumi.Resource{bucket})}
	if _, err := s3.NewBucketPublicAccessBlock(ctx, name+"-state", &s3.BucketPublicAccessBlockArgs{
		Bucket:                bucket.ID(),
		BlockPublicAcls:       pulumi.Bool(true),
		BlockPublicPolicy:     pulumi.Bool(true),
		IgnorePublicAcls:      pulumi.Bool(true),
		RestrictPublicBuckets: pulumi.Bool(true),
	}, onBucket...); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketOwnershipControls(ctx, name+"-state", &s3.BucketOwnershipControlsArgs{
		Bucket: bucket.ID(),
		Rule:   s3.BucketOwnershipControlsRuleArgs{ObjectOwnership: pulumi.String("BucketOwnerEnforced")},
	}, onBucket...); err != nil {
		return nil, err
	}
	versioning, err := s3.NewBucketVersioningV2(ctx, name+"-state", &s3.BucketVersioningV2Args{
		Bucket:                  bucket.ID(),
		VersioningConfiguration: s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")},
	}, onBucket...)
	if err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, name+"-state", &s3.BucketServerSideEncryptionConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{
				SseAlgorithm:   pulumi.String("aws:kms"),
				KmsMasterKeyId: stateKey.Arn,
			},
			BucketKeyEnabled: pulumi.Bool(true),
		}},
	}, onBucket...); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketPolicy(ctx, name+"-state", &s3.BucketPolicyArgs{
		Bucket: bucket.ID(),
		Policy: pulumi.String(TLSOnlyPolicy(args.Bucket).JSON()),
	}, onBucket...); err != nil {
		return nil, err
	}
	if _, err := s3.NewBucketLifecycleConfigurationV2(ctx, name+"-state", &s3.BucketLifecycleConfigurationV2Args{
		Bucket: bucket.ID(),
		Rules: s3.BucketLifecycleConfigurationV2RuleArray{s3.BucketLifecycleConfigurationV2RuleArgs{
			Id:     pulumi.String("expire-old-state-versions"),
			Status: pulumi.String("Enabled"),
			Filter: s3.BucketLifecycleConfigurationV2RuleFilterArgs{Prefix: pulumi.String("")},
			NoncurrentVersionExpiration: s3.BucketLifecycleConfigurationV2RuleNoncurrentVersionExpirationArgs{
				NoncurrentDays: pulumi.Int(args.NoncurrentDays),
			},
			AbortIncompleteMultipartUpload: s3.BucketLifecycleConfigurationV2RuleAbortIncompleteMultipartUploadArgs{
				DaysAfterInitiation: pulumi.Int(7),
			},
		}},
	}, p, pulumi.DependsOn([]pulumi.Resource{versioning})); err != nil {
		return nil, err
	}

	table, err := dynamodb.NewTable(ctx, name+"-lock", &dynamodb.TableArgs{
		Name:                      pulumi.String(args.LockTable),
		BillingMode:               pulumi.String("PAY_PER_REQUEST"),
		HashKey:                   pulumi.String(LockHashKey),
		Attributes:                dynamodb.TableAttributeArray{dynamodb.TableAttributeArgs{Name: pulumi.String(LockHashKey), Type: pulumi.String("S")}},
		PointInTimeRecovery:       dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(true)},
		ServerSideEncryption:      dynamodb.TableServerSideEncryptionArgs{Enabled: pulumi.Bool(true), KmsKeyArn: stateKey.Arn},
		Ttl:                       dynamodb.TableTtlArgs{AttributeName: pulumi.String(TTLKey), Enabled: pulumi.Bool(true)},
		DeletionProtectionEnabled: pulumi.Bool(true),
		Tags:                      o.AWS("lock"),
	}, p, keep)
	if err != nil {
		return nil, err
	}

	providerARN := pulumi.String(args.ExistingOIDCProviderARN).ToStringOutput()
	if args.ExistingOIDCProviderARN == "" {
		oidc, err := iam.NewOpenIdConnectProvider(ctx, name+"-github", &iam.OpenIdConnectProviderArgs{
			Url:             pulumi.String("https://" + GitHubIssuer),
			ClientIdLists:   pulumi.StringArray{pulumi.String(GitHubAudience)},
			ThumbprintLists: pulumi.ToStringArray(gitHubThumbprints),
			Tags:            o.AWS("github-oidc"),
		}, p)
		if err != nil {
			return nil, err
		}
		providerARN = oidc.Arn
	}

	keyARNs := pulumi.StringMap{}
	for st, k := range secretsKeys {
		keyARNs[st] = k.Arn
	}
	scope := pulumi.All(stateKey.Arn, keyARNs.ToStringMapOutput()).ApplyT(func(v []any) Scope {
		return Scope{
			Project: o.Project, Account: args.Account, Region: args.Region,
			Bucket: args.Bucket, StatePrefix: args.StatePrefix, LockTable: args.LockTable,
			StateKeyARN: v[0].(string), SecretsKeyARNs: v[1].(map[string]string),
		}
	})
	b.RoleARNs = pulumi.StringMap{}
	for _, spec := range Roles(args.Stacks, args.PreviewStacks, args.DriftStacks) {
		r, err := iam.NewRole(ctx, name+"-"+spec.Name, &iam.RoleArgs{
			Name:        pulumi.String(o.Project + "-" + spec.Name),
			Description: pulumi.String(spec.Purpose),
			AssumeRolePolicy: providerARN.ApplyT(func(arn string) string {
				return TrustPolicy(arn, args.GitHubRepo, spec.Subjects).JSON()
			}).(pulumi.StringOutput),
			MaxSessionDuration: pulumi.Int(MaxSessionSeconds),
			Tags:               o.AWS(spec.Name + "-role"),
		}, p)
		if err != nil {
			return nil, err
		}
		if _, err := iam.NewRolePolicy(ctx, name+"-"+spec.Name, &iam.RolePolicyArgs{
			Role: r.ID(),
			Policy: scope.ApplyT(func(s any) string {
				return spec.Policy(s.(Scope)).JSON()
			}).(pulumi.StringOutput),
		}, p); err != nil {
			return nil, err
		}
		b.RoleARNs[spec.Name] = r.Arn
	}
	b.SecretsProviders = secretsProviders
	b.SnapshotRoleARN = snapshotRole.Arn

	b.LoginURL = pulumi.Sprintf("s3://%s/%s?region=%s", bucket.Bucket, args.StatePrefix, args.Region)
	b.LockTable = table.Name
	return b, ctx.RegisterResourceOutputs(b, pulumi.Map{
		"loginUrl": b.LoginURL, "secretsProviders": b.SecretsProviders, "lockTable": b.LockTable,
		"roleArns": b.RoleARNs, "snapshotRoleArn": b.SnapshotRoleARN,
	})
}

// TLSOnlyPolicy denies every request to the bucket that is not over TLS.
func TLSOnlyPolicy(bucket string) PolicyDocument {
	arn := "arn:aws:s3:::" + bucket
	return PolicyDocument{Version: "2012-10-17", Statement: []Statement{{
		Sid:       "DenyInsecureTransport",
		Effect:    "Deny",
		Principal: map[string]any{"AWS": "*"},
		Action:    []string{"s3:*"},
		Resource:  []string{arn, arn + "/*"},
		Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": "false"}},
	}}}
}

// DefaultBucket is the state bucket's name when none is configured: bucket
// names are global, so it carries the account id.
func DefaultBucket(project, account string) string {
	return fmt.Sprintf("%s-state-%s", project, account)
}
