// Package backend bootstraps where the platform's stacks keep their state
// and how deploys are serialised: an S3 bucket for Pulumi's self-managed
// backend (versioned, SSE-KMS with its own key, private, TLS only, old
// versions expiring), a DynamoDB table for the deploy lock (scripts/stacklock),
// a KMS key for the stacks' secrets provider, and GitHub OIDC roles for CI —
// a read-only one for pull-request previews and a deploy one for the manual
// workflow — whose policies reach only this project's state, table, keys and
// tagged resources.
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
)

// Attribute names of the lock table; scripts/stacklock writes them.
const (
	LockHashKey = "LockID"
	TTLKey      = "expires_at" // epoch seconds; DynamoDB deletes items some time after
)

// GitHub's OIDC certificate thumbprints (AWS no longer checks them for this
// issuer, but the API still wants one).
var gitHubThumbprints = []string{"6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"}

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
	// GitHubRepo ("owner/name") whose workflows may assume the roles.
	GitHubRepo string
	// Stacks get one GitHub environment each in deploy.yml.
	Stacks []string
	// ExistingOIDCProviderARN reuses the account's GitHub OIDC provider
	// (an account can have only one per issuer); empty creates it.
	ExistingOIDCProviderARN string
}

// Backend is the bootstrapped state backend.
type Backend struct {
	pulumi.ResourceState
	LoginURL        pulumi.StringOutput
	SecretsProvider pulumi.StringOutput
	LockTable       pulumi.StringOutput
	PreviewRoleARN  pulumi.StringOutput
	DeployRoleARN   pulumi.StringOutput
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
	stateKey, err := key("state", "Encrypts the Pulumi state bucket of "+o.Project)
	if err != nil {
		return nil, err
	}
	secretsKey, err := key("secrets", "Secrets provider of the "+o.Project+" stacks")
	if err != nil {
		return nil, err
	}
	secretsAlias, err := kms.NewAlias(ctx, name+"-secrets", &kms.AliasArgs{
		Name:        pulumi.String("alias/" + o.Project + "-secrets"),
		TargetKeyId: secretsKey.KeyId,
	}, p)
	if err != nil {
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

	scope := pulumi.All(stateKey.Arn, secretsKey.Arn).ApplyT(func(arns []any) Scope {
		return Scope{
			Project: o.Project, Account: args.Account, Region: args.Region,
			Bucket: args.Bucket, StatePrefix: args.StatePrefix, LockTable: args.LockTable,
			StateKeyARN: arns[0].(string), SecretsKeyARN: arns[1].(string),
		}
	})
	role := func(n, desc string, subjects []string, policy func(Scope) PolicyDocument) (pulumi.StringOutput, error) {
		r, err := iam.NewRole(ctx, name+"-"+n, &iam.RoleArgs{
			Name:        pulumi.String(o.Project + "-" + n),
			Description: pulumi.String(desc),
			AssumeRolePolicy: providerARN.ApplyT(func(arn string) string {
				return TrustPolicy(arn, args.GitHubRepo, subjects).JSON()
			}).(pulumi.StringOutput),
			MaxSessionDuration: pulumi.Int(3600),
			Tags:               o.AWS(n + "-role"),
		}, p)
		if err != nil {
			return pulumi.StringOutput{}, err
		}
		if _, err := iam.NewRolePolicy(ctx, name+"-"+n, &iam.RolePolicyArgs{
			Role: r.ID(),
			Policy: scope.ApplyT(func(s any) string {
				return policy(s.(Scope)).JSON()
			}).(pulumi.StringOutput),
		}, p); err != nil {
			return pulumi.StringOutput{}, err
		}
		return r.Arn, nil
	}
	if b.PreviewRoleARN, err = role("preview", "pulumi preview from pull requests and the drift check (read only)", PreviewSubjects, PreviewPolicy); err != nil {
		return nil, err
	}
	if b.DeployRoleARN, err = role("deploy", "pulumi up/destroy from the manual deploy workflow", DeploySubjects(args.Stacks), DeployPolicy); err != nil {
		return nil, err
	}

	b.LoginURL = pulumi.Sprintf("s3://%s/%s?region=%s", bucket.Bucket, args.StatePrefix, args.Region)
	b.SecretsProvider = pulumi.Sprintf("awskms://%s?region=%s", secretsAlias.Name, args.Region)
	b.LockTable = table.Name
	return b, ctx.RegisterResourceOutputs(b, pulumi.Map{
		"loginUrl": b.LoginURL, "secretsProvider": b.SecretsProvider, "lockTable": b.LockTable,
		"previewRoleArn": b.PreviewRoleARN, "deployRoleArn": b.DeployRoleARN,
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
