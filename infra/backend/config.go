package backend

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"microk8s-platform/infra/tags"
	"microk8s-platform/internal/repo"
)

// Config is the bootstrap stack's configuration (stacks/backend/Pulumi.*.yaml).
type Config struct {
	GitHubRepo string // githubRepository, required: "owner/name"
	// githubOwnerId, githubRepositoryId: the numeric ids, for repositories
	// whose tokens carry immutable subject claims; both or neither.
	GitHubOwnerID, GitHubRepoID string
	Bucket                      string   // stateBucket; default <platform>-state-<account>
	StatePrefix                 string   // statePrefix; default "microk8s-platform"
	LockTable                   string   // lockTable; default "microk8s-platform-locks"
	NoncurrentDays              int      // noncurrentVersionDays; default 90
	Stacks                      []string // stacks; default [dev, prod]
	PreviewStacks               []string // previewStacks: previewed on pull requests; default [dev]
	DriftStacks                 []string // driftStacks: checked for drift from main; default [prod]
	OIDCProviderARN             string   // githubOidcProviderArn; empty creates the provider
	// spotServiceLinkedRoleExists: true when the account already has
	// AWSServiceRoleForEC2Spot (any earlier spot request made it); default
	// false creates it.
	SpotRoleExists bool
}

// Platform is the project whose state the backend keeps.
const Platform = repo.Project

var (
	repoRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	idRe     = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	bucketRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	tableRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	prefixRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	stackRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// LoadConfig reads and validates the configuration, reporting every problem.
func LoadConfig(ctx *pulumi.Context) (Config, error) {
	c := config.New(ctx, "")
	cfg := Config{
		GitHubRepo:      c.Get("githubRepository"),
		GitHubOwnerID:   c.Get("githubOwnerId"),
		GitHubRepoID:    c.Get("githubRepositoryId"),
		Bucket:          c.Get("stateBucket"),
		StatePrefix:     orDefault(c.Get("statePrefix"), Platform),
		LockTable:       orDefault(c.Get("lockTable"), Platform+"-locks"),
		NoncurrentDays:  90,
		Stacks:          []string{"dev", "prod"},
		PreviewStacks:   []string{"dev"},
		DriftStacks:     []string{"prod"},
		OIDCProviderARN: c.Get("githubOidcProviderArn"),
	}
	var errs []error
	if v := c.Get("spotServiceLinkedRoleExists"); v != "" {
		b, err := strconv.ParseBool(v)
		cfg.SpotRoleExists = b
		if err != nil {
			errs = append(errs, fmt.Errorf("spotServiceLinkedRoleExists %q: want true or false", v))
		}
	}
	if v := c.Get("noncurrentVersionDays"); v != "" {
		if _, err := fmt.Sscan(v, &cfg.NoncurrentDays); err != nil {
			errs = append(errs, fmt.Errorf("noncurrentVersionDays %q: want a whole number of days >= 1", v))
		}
	}
	for key, dst := range map[string]*[]string{"stacks": &cfg.Stacks, "previewStacks": &cfg.PreviewStacks, "driftStacks": &cfg.DriftStacks} {
		if v := c.Get(key); v != "" {
			*dst = nil
			if err := c.TryObject(key, dst); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a list of stack names, e.g. [\"dev\",\"prod\"]", key, v))
			}
		}
	}
	return cfg, errors.Join(append(errs, cfg.Validate())...)
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, val, want string) { errs = append(errs, fmt.Errorf("%s %q: %s", key, val, want)) }
	if !repoRe.MatchString(c.GitHubRepo) {
		bad("githubRepository", c.GitHubRepo, "want the GitHub repository whose workflows deploy, as owner/name (pulumi config set githubRepository acme/microk8s-platform); for the immutable subject form owner@id/name@id, set githubOwnerId and githubRepositoryId instead of writing the ids here")
	}
	for _, kv := range [][2]string{{"githubOwnerId", c.GitHubOwnerID}, {"githubRepositoryId", c.GitHubRepoID}} {
		if key, id := kv[0], kv[1]; id != "" && !idRe.MatchString(id) {
			bad(key, id, "want the numeric id GitHub gives it: gh api repos/OWNER/REPO --jq '.owner.id, .id' prints the owner's, then the repository's")
		}
	}
	if (c.GitHubOwnerID == "") != (c.GitHubRepoID == "") {
		errs = append(errs, fmt.Errorf("githubOwnerId %q and githubRepositoryId %q: set both or neither (the immutable subject repo:OWNER@OWNER_ID/REPO@REPO_ID needs both; gh api repos/OWNER/REPO --jq '.owner.id, .id')", c.GitHubOwnerID, c.GitHubRepoID))
	}
	if c.Bucket != "" && (!bucketRe.MatchString(c.Bucket) || strings.Contains(c.Bucket, "..")) {
		bad("stateBucket", c.Bucket, "want an S3 bucket name: 3-63 lower-case letters, digits, dots and hyphens")
	}
	if !prefixRe.MatchString(c.StatePrefix) {
		bad("statePrefix", c.StatePrefix, "want a folder name like microk8s-platform (no leading or trailing /)")
	}
	if !tableRe.MatchString(c.LockTable) {
		bad("lockTable", c.LockTable, "want a DynamoDB table name: 3-255 of A-Z a-z 0-9 _ . -")
	}
	if c.NoncurrentDays < 1 {
		bad("noncurrentVersionDays", fmt.Sprint(c.NoncurrentDays), "want >= 1")
	}
	if len(c.Stacks) == 0 {
		bad("stacks", "[]", "want at least one stack the deploy role may deploy")
	}
	for _, s := range c.Stacks {
		if !stackRe.MatchString(s) {
			bad("stacks", s, "want stack names of A-Z a-z 0-9 _ . -")
		}
	}
	for key, list := range map[string][]string{"previewStacks": c.PreviewStacks, "driftStacks": c.DriftStacks} {
		for _, s := range list {
			if !slices.Contains(c.Stacks, s) {
				bad(key, s, "want one of stacks "+strings.Join(c.Stacks, ", "))
			}
		}
	}
	if c.OIDCProviderARN != "" && !strings.HasPrefix(c.OIDCProviderARN, "arn:aws:iam::") {
		bad("githubOidcProviderArn", c.OIDCProviderARN, "want the ARN of an IAM OIDC provider, arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com")
	}
	return errors.Join(errs...)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Run is the bootstrap program: stacks/backend calls it.
func Run(ctx *pulumi.Context) error {
	cfg, err := LoadConfig(ctx)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	id, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading the AWS account: %w", err)
	}
	region, err := aws.GetRegion(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading the AWS region: %w", err)
	}
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket(Platform, id.AccountId)
	}
	b, err := New(ctx, "backend", Args{
		Owner:   tags.Owner{Project: Platform, Stack: ctx.Stack()},
		Account: id.AccountId, Region: region.Name,
		Bucket: cfg.Bucket, StatePrefix: cfg.StatePrefix, LockTable: cfg.LockTable,
		NoncurrentDays: cfg.NoncurrentDays, GitHubRepo: GitHubRepo{Name: cfg.GitHubRepo, OwnerID: cfg.GitHubOwnerID, ID: cfg.GitHubRepoID}, Stacks: cfg.Stacks,
		PreviewStacks: cfg.PreviewStacks, DriftStacks: cfg.DriftStacks,
		CreateSpotServiceLinkedRole: !cfg.SpotRoleExists,
		ExistingOIDCProviderARN:     cfg.OIDCProviderARN,
	})
	if err != nil {
		return err
	}
	ctx.Export("loginUrl", b.LoginURL)
	ctx.Export("secretsProviders", b.SecretsProviders)
	ctx.Export("lockTable", b.LockTable)
	ctx.Export("roleArns", b.RoleARNs)
	ctx.Export("snapshotRoleArn", b.SnapshotRoleARN)
	ctx.Export("next", pulumi.Sprintf("pulumi login %s && export LOCK_TABLE=%s && pulumi stack init %s --secrets-provider %s (README: Deploy from GitHub Actions)", b.LoginURL, b.LockTable, cfg.Stacks[0], b.SecretsProviders[cfg.Stacks[0]]))
	return nil
}
