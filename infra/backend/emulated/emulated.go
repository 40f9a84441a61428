// Package emulated is an AWS account on this machine for tests: moto_server
// on 127.0.0.1 behind a recording proxy (internal/awsrecord), holding the
// platform's state backend the way the bootstrap program declares it (the
// state bucket, versioned and SSE-KMS with the state key; one secrets key
// and alias per stack; the lock table encrypted with the state key), and
// the CI roles' policies (infra/backend), so a test can run real programs
// as a role and check every call they make against that role's policy.
//
// A role is its access key id: processes run as role R get
// AWS_ACCESS_KEY_ID=R (RoleEnv); the set-up runs as "admin", whose calls
// are not checked.
package emulated

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"microk8s-platform/infra/backend"
	"microk8s-platform/internal/awsrecord"
	"microk8s-platform/internal/iampolicy"
	"microk8s-platform/internal/moto"
	"microk8s-platform/internal/repo"
)

// Admin is the principal of the set-up (not checked).
const Admin = "admin"

// Stacks, PreviewStacks and DriftStacks are the bootstrap's defaults.
var (
	Stacks        = []string{"dev", "prod"}
	PreviewStacks = []string{"dev"}
	DriftStacks   = []string{"prod"}
)

// Account is the emulated account.
type Account struct {
	MotoURL string
	Rec     *awsrecord.Recorder
	Authz   awsrecord.Env
	Scope   backend.Scope
	// Policies: role name (deploy-dev, preview, ...) -> its policy.
	Policies map[string]iampolicy.Document
	// LoginURL is the state backend's URL, as `make login` names it.
	LoginURL string
	// SecretsProviders: stack -> its awskms:// secrets provider.
	SecretsProviders map[string]string
	keyARNs          map[string]string // key id, alias name -> key ARN
	ec2              *ec2.Client
}

// Start starts moto and the recorder and creates the state backend.
func Start(t *testing.T, opts ...moto.Option) *Account {
	t.Helper()
	motoURL := moto.Start(t, opts...)
	rec, err := awsrecord.Start(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rec.Close() })
	a := &Account{MotoURL: motoURL, Rec: rec, keyARNs: map[string]string{}, SecretsProviders: map[string]string{}}
	ctx := context.Background()
	cfg := a.AdminConfig(t)

	k := kms.NewFromConfig(cfg)
	newKey := func(desc string) string {
		out, err := k.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(desc)})
		if err != nil {
			t.Fatal(err)
		}
		arn := *out.KeyMetadata.Arn
		a.keyARNs[*out.KeyMetadata.KeyId], a.keyARNs[arn] = arn, arn
		return arn
	}
	stateKey := newKey("state")
	secrets := map[string]string{}
	for _, st := range Stacks {
		arn := newKey("secrets " + st)
		alias := backend.SecretsAlias(repo.Project, st)
		if _, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		a.keyARNs[alias] = arn
		a.keyARNs["arn:aws:kms:"+moto.Region+":"+moto.Account+":"+alias] = arn
		secrets[st] = arn
		a.SecretsProviders[st] = "awskms://" + alias + "?region=" + moto.Region
	}

	a.Scope = backend.Scope{
		Project: repo.Project, Account: moto.Account, Region: moto.Region,
		Bucket: backend.DefaultBucket(repo.Project, moto.Account), StatePrefix: repo.Project,
		LockTable: repo.Project + "-locks", StateKeyARN: stateKey, SecretsKeyARNs: secrets,
	}
	s := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	bucket := aws.String(a.Scope.Bucket)
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: bucket,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: bucket,
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{
				SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(stateKey)},
			BucketKeyEnabled: aws.Bool(true),
		}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(a.Scope.LockTable),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(backend.LockHashKey), KeyType: ddbtypes.KeyTypeHash}},
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(backend.LockHashKey), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		SSESpecification:     &ddbtypes.SSESpecification{Enabled: aws.Bool(true), SSEType: ddbtypes.SSETypeKms, KMSMasterKeyId: aws.String(stateKey)},
	}); err != nil {
		t.Fatal(err)
	}
	a.LoginURL = fmt.Sprintf("s3://%s/%s?region=%s", a.Scope.Bucket, a.Scope.StatePrefix, moto.Region)

	a.Policies = map[string]iampolicy.Document{}
	for _, spec := range backend.Roles(Stacks, PreviewStacks, DriftStacks) {
		a.Policies[spec.Name] = spec.Policy(a.Scope)
	}
	a.ec2 = ec2.NewFromConfig(cfg)
	a.Authz = awsrecord.Env{
		Account: moto.Account, Region: moto.Region,
		SSEKMS:   map[string]string{a.Scope.Bucket: stateKey},
		HashKeys: map[string]string{a.Scope.LockTable: backend.LockHashKey},
		KeyARN:   a.keyARN,
		EC2Tags:  a.ec2Tags,
	}
	return a
}

// AdminConfig is an AWS SDK configuration for moto itself, as the
// administrator: calls made with it are not recorded.
func (a *Account) AdminConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion(moto.Region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(Admin, "secret", "")),
		awsconfig.WithBaseEndpoint(a.MotoURL))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (a *Account) keyARN(id string) (string, error) {
	if arn, ok := a.keyARNs[id]; ok {
		return arn, nil
	}
	return "", fmt.Errorf("no such key or alias in the emulated account")
}

func (a *Account) ec2Tags(id string) (map[string]string, error) {
	out, err := a.ec2.DescribeTags(context.Background(), &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("resource-id"), Values: []string{id}},
	}})
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, tg := range out.Tags {
		tags[*tg.Key] = *tg.Value
	}
	return tags, nil
}

// RoleEnv is the environment of a process acting as principal: its access
// key, the recorder as every service's endpoint, the region, and nothing
// of the machine's own AWS configuration.
func (a *Account) RoleEnv(principal string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + principal, "AWS_SECRET_ACCESS_KEY=emulated", "AWS_SESSION_TOKEN=",
		"AWS_ENDPOINT_URL=" + a.Rec.URL, "AWS_REGION=" + moto.Region, "AWS_DEFAULT_REGION=" + moto.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// Check evaluates every recorded call against its principal's policy and
// fails the test for each one a policy denies, naming the call.
func (a *Account) Check(t *testing.T) {
	t.Helper()
	denied, err := a.Authz.Check(a.Rec.Calls(), a.Policies)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range denied {
		t.Errorf("%v", d)
	}
}

// Summary counts the recorded calls per tag and principal: how many, and
// which IAM actions, for the log and the README.
func (a *Account) Summary(t *testing.T) string {
	t.Helper()
	type key struct{ tag, principal string }
	counts := map[key]int{}
	actions := map[key]map[string]bool{}
	for _, c := range a.Rec.Calls() {
		if _, ok := a.Policies[c.Principal]; !ok {
			continue
		}
		k := key{c.Tag, c.Principal}
		counts[k]++
		reqs, err := a.Authz.Authz(c)
		if err != nil {
			t.Fatal(err)
		}
		if actions[k] == nil {
			actions[k] = map[string]bool{}
		}
		for _, r := range reqs {
			actions[k][r.Action] = true
		}
	}
	var keys []key
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].principal != keys[j].principal {
			return keys[i].principal < keys[j].principal
		}
		return keys[i].tag < keys[j].tag
	})
	var b strings.Builder
	for _, k := range keys {
		var as []string
		for a := range actions[k] {
			as = append(as, a)
		}
		sort.Strings(as)
		fmt.Fprintf(&b, "%-12s %-40s %4d calls: %s\n", k.principal, k.tag, counts[k], strings.Join(as, " "))
	}
	return b.String()
}

// PulumiCLI finds the Pulumi CLI the tools build makes (.tools/bin/pulumi,
// scripts/tools/build.sh pulumi; make test builds it first), or one on
// PATH, and returns the directory to put first on PATH.
func PulumiCLI(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, ".tools", "bin")
	if _, err := os.Stat(filepath.Join(bin, "pulumi")); err == nil {
		return bin
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return filepath.Dir(p)
	}
	t.Fatal("no Pulumi CLI: run scripts/tools/build.sh pulumi (make test does) or install pulumi")
	return ""
}
