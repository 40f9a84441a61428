package workflows

// The pulumi the workflow tier puts first on PATH. The platform program
// needs the Pulumi Go language host and the AWS provider, which this
// machine cannot get, so `pulumi preview|up|refresh|destroy` run the real
// CLI (the one the tools build makes) through the Automation API with a
// stand-in program instead: the backend's calls (state in S3, the secrets
// key in KMS) are the real CLI's, made as the job's role; the program's
// own calls are the provider tier's (infra/backend providercalls_test.go).
// Every other command (stack output, cancel, config, ...) is the real CLI.
//
// The stand-in program declares the network's component and its VPC and
// security group under the platform's own URNs, so `make network`'s
// --target list is resolved by the real engine; when up creates them it
// makes, in moto and as the administrator, the VPC and the security group
// infra/network tags, which scripts/access then finds; destroy removes
// them. It reads the stack's secret dbPassword (so the stack's KMS key is
// used) and exports appUrl (STANDIN_APP_URL: a comments service the test
// runs, for the smoke step).
//
// The test binary is the stand-in: TestMain runs it when PULUMI_STANDIN=1.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"microk8s-platform/infra/network"
	"microk8s-platform/internal/repo"
)

func TestMain(m *testing.M) {
	if os.Getenv("PULUMI_STANDIN") == "1" {
		os.Exit(pulumiStandin(os.Args[1:]))
	}
	os.Exit(m.Run())
}

type component struct{ pulumi.ResourceState }

// standinProgram is the stand-in program (see the file comment).
func standinProgram(ctx *pulumi.Context) error {
	var net component
	if err := ctx.RegisterComponentResource("microk8s-platform:network:AWS", "network", &net); err != nil {
		return err
	}
	var vpc, sg component
	if err := ctx.RegisterComponentResource("aws:ec2/vpc:Vpc", "network", &vpc, pulumi.Parent(&net)); err != nil {
		return err
	}
	if err := ctx.RegisterComponentResource("aws:ec2/securityGroup:SecurityGroup", "network", &sg, pulumi.Parent(&net)); err != nil {
		return err
	}
	cfg := config.New(ctx, "")
	ctx.Export("appUrl", pulumi.String(os.Getenv("STANDIN_APP_URL")))
	ctx.Export("dbPassword", cfg.RequireSecret("dbPassword"))
	return nil
}

// networkInMoto makes (or, with remove, deletes) the stack's VPC and
// security group, tagged as infra/network tags them, as the administrator.
func networkInMoto(ctx context.Context, stack string, remove bool) error {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("admin", "secret", "")),
		awsconfig.WithBaseEndpoint(os.Getenv("STANDIN_MOTO_URL")))
	if err != nil {
		return err
	}
	c := ec2.NewFromConfig(cfg)
	filters := []types.Filter{
		{Name: aws.String("tag:project"), Values: []string{repo.Project}},
		{Name: aws.String("tag:stack"), Values: []string{stack}},
	}
	groups, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: filters})
	if err != nil {
		return err
	}
	if remove {
		for _, g := range groups.SecurityGroups {
			if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
				return err
			}
			if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: g.VpcId}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(groups.SecurityGroups) > 0 {
		return nil
	}
	tags := func(rt types.ResourceType, extra ...types.Tag) []types.TagSpecification {
		return []types.TagSpecification{{ResourceType: rt, Tags: append([]types.Tag{
			{Key: aws.String("project"), Value: aws.String(repo.Project)},
			{Key: aws.String("stack"), Value: aws.String(stack)},
			{Key: aws.String("managed-by"), Value: aws.String("pulumi")},
		}, extra...)}}
	}
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"), TagSpecifications: tags(types.ResourceTypeVpc)})
	if err != nil {
		return err
	}
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String(repo.Project + "-" + stack + "-vm"), Description: aws.String("stand-in"), VpcId: vpc.Vpc.VpcId,
		TagSpecifications: tags(types.ResourceTypeSecurityGroup, types.Tag{Key: aws.String(network.AutomationTagKey), Value: aws.String(network.AutomationTag)}),
	})
	return err
}

// pulumiStandin is `pulumi args...`.
func pulumiStandin(args []string) int {
	real := os.Getenv("PULUMI_REAL_CLI")
	if len(args) == 0 || !slices.Contains([]string{"preview", "up", "destroy", "refresh"}, args[0]) {
		if err := syscall.Exec(real, append([]string{"pulumi"}, args...), os.Environ()); err != nil {
			fmt.Fprintln(os.Stderr, "pulumi stand-in:", err)
		}
		return 1
	}
	verb := args[0]
	fs := flag.NewFlagSet("pulumi "+verb, flag.ContinueOnError)
	stack := fs.String("stack", "", "")
	fs.StringVar(stack, "s", "", "")
	var targets multi
	fs.Var(&targets, "target", "")
	refresh := fs.Bool("refresh", false, "")
	asJSON := fs.Bool("json", false, "")
	for _, b := range []string{"yes", "y", "diff", "non-interactive", "expect-no-changes", "skip-preview"} {
		fs.Bool(b, false, "")
	}
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *stack == "" {
		fmt.Fprintf(os.Stderr, "pulumi stand-in: %v: flags it does not know (or no --stack) in %q\n", err, args)
		return 2
	}
	ctx := context.Background()
	dir, _ := os.Getwd()
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(filepath.Dir(real))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := auto.SelectStackInlineSource(ctx, *stack, repo.Project, standinProgram, auto.Pulumi(cli), auto.WorkDir(dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 255
	}
	switch verb {
	case "preview":
		opts := []optpreview.Option{optpreview.ProgressStreams(os.Stderr)}
		if *refresh {
			opts = append(opts, optpreview.Refresh())
		}
		res, err := s.Preview(ctx, opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 255
		}
		if *asJSON {
			_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"changeSummary": res.ChangeSummary, "steps": []any{}})
		}
	case "up":
		opts := []optup.Option{optup.ProgressStreams(os.Stdout)}
		if len(targets) > 0 {
			opts = append(opts, optup.Target(targets), optup.TargetDependents())
		}
		if _, err := s.Up(ctx, opts...); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 255
		}
		if err := networkInMoto(ctx, *stack, false); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in network:", err)
			return 1
		}
	case "refresh":
		if _, err := s.Refresh(ctx, optrefresh.ProgressStreams(os.Stdout)); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 255
		}
	case "destroy":
		if _, err := s.Destroy(ctx, optdestroy.ProgressStreams(os.Stdout)); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 255
		}
		if err := networkInMoto(ctx, *stack, true); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in network:", err)
			return 1
		}
	}
	return 0
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }
