package backend_test

// The state backend, for real: the Pulumi CLI the tools build makes
// (scripts/tools/build.sh pulumi, the version go.mod pins) runs against
// moto's S3, KMS and DynamoDB with the awskms secrets provider, as each CI
// role, doing what CI does with a stack: select it, preview, up, a second
// preview, refresh, read its outputs, cancel, destroy. The program is a
// small inline one (a component and a secret output): the calls are the
// backend's, not the program's. Every S3, KMS and DynamoDB request the CLI
// makes is recorded and evaluated against the role's policy with the IAM
// evaluator, resources and conditions included; a denied call fails the
// test and names the call.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"microk8s-platform/infra/backend/emulated"
	"microk8s-platform/internal/repo"
)

// probe is the inline program: one component (no provider plugin needed)
// and a secret output, so state, history and the secrets key are used.
func probe(ctx *pulumi.Context) error {
	var c struct{ pulumi.ResourceState }
	if err := ctx.RegisterComponentResource("microk8s-platform:probe:Probe", "probe", &c); err != nil {
		return err
	}
	ctx.Export("token", config.New(ctx, "").RequireSecret("token"))
	ctx.Export("stack", pulumi.String(ctx.Stack()))
	return nil
}

// stateRun runs stacks of the probe program in one workspace as one
// principal at a time.
type stateRun struct {
	t    *testing.T
	a    *emulated.Account
	dir  string // the workspace: Pulumi.yaml and the stack files
	home string // PULUMI_HOME
	path string // the CLI's directory, first on PATH
}

func (r *stateRun) env(principal string) map[string]string {
	env := map[string]string{
		"PULUMI_BACKEND_URL": r.a.LoginURL, "PULUMI_HOME": r.home, "PATH": r.path + ":" + os.Getenv("PATH"),
		"PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_CONFIG_PASSPHRASE": "",
		// As the workflows set it: no listing of .pulumi/stacks/ for
		// legacy stack files (scripts/workflows checks they do).
		"PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
	}
	for _, kv := range r.a.RoleEnv(principal) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func (r *stateRun) opts(principal string) []auto.LocalWorkspaceOption {
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(r.path)})
	if err != nil {
		r.t.Fatal(err)
	}
	return []auto.LocalWorkspaceOption{
		auto.Pulumi(cli), auto.WorkDir(r.dir), auto.PulumiHome(r.home), auto.EnvVars(r.env(principal)),
		auto.Project(workspace.Project{Name: repo.Project, Runtime: workspace.NewProjectRuntimeInfo("go", nil)}),
	}
}

// stack selects stackName as principal, tagging what follows with tag.
func (r *stateRun) stack(principal, stackName string) auto.Stack {
	r.t.Helper()
	r.a.Rec.SetTag("select")
	s, err := auto.SelectStackInlineSource(context.Background(), stackName, repo.Project, probe, r.opts(principal)...)
	if err != nil {
		r.t.Fatalf("%s: select %s: %v", principal, stackName, err)
	}
	return s
}

// cli runs the CLI itself, as the workflows do for commands without a
// program (stack output, cancel).
func (r *stateRun) cli(principal string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command(filepath.Join(r.path, "pulumi"), args...)
	cmd.Dir = r.dir
	cmd.Env = os.Environ()
	for k, v := range r.env(principal) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("%s: pulumi %s: %v\n%s", principal, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// step tags the calls of f and fails the test on f's error.
func (r *stateRun) step(tag string, f func() error) {
	r.t.Helper()
	r.a.Rec.SetTag(tag)
	if err := f(); err != nil {
		r.t.Fatalf("%s: %v", tag, err)
	}
}

func newStateRun(t *testing.T) *stateRun {
	a := emulated.Start(t)
	r := &stateRun{t: t, a: a, dir: t.TempDir(), home: t.TempDir(), path: emulated.PulumiCLI(t)}
	// The administrator's one-time set-up (README "Deploy to AWS"): stack
	// init with the stack's KMS key, which also writes the backend's
	// meta.yaml, and a secret in the stack's config.
	ctx := context.Background()
	for _, st := range emulated.Stacks {
		a.Rec.SetTag("admin: stack init " + st)
		s, err := auto.UpsertStackInlineSource(ctx, st, repo.Project, probe,
			append(r.opts(emulated.Admin), auto.SecretsProvider(a.SecretsProviders[st]))...)
		if err != nil {
			t.Fatalf("stack init %s: %v", st, err)
		}
		if err := s.SetConfig(ctx, "token", auto.ConfigValue{Value: "s3cret-" + st, Secret: true}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// deploySteps is what the deploy workflow does with a stack, as its role.
func (r *stateRun) deploySteps(role, st string) {
	ctx := context.Background()
	s := r.stack(role, st)
	r.step("preview", func() error { _, err := s.Preview(ctx); return err })
	r.step("up", func() error { _, err := s.Up(ctx, optup.SuppressProgress()); return err })
	r.step("preview (no changes)", func() error {
		p, err := s.Preview(ctx, optpreview.ExpectNoChanges())
		_ = p
		return err
	})
	r.step("refresh", func() error { _, err := s.Refresh(ctx, optrefresh.SuppressProgress()); return err })
	r.step("stack output", func() error {
		if out := r.cli(role, "stack", "output", "--stack", st); !strings.Contains(out, "[secret]") {
			r.t.Errorf("%s: stack output shows the secret or nothing:\n%s", role, out)
		}
		return nil
	})
	r.step("cancel", func() error {
		// stacklock's takeover clears a dead run's lock file this way;
		// with no lock held the diy backend says so and succeeds.
		r.cli(role, "cancel", "--yes", "--stack", st)
		return nil
	})
}

func TestStateBackendCallsEachRoleMakesAreAllowed(t *testing.T) {
	r := newStateRun(t)
	ctx := context.Background()

	r.deploySteps("deploy-dev", "dev")
	r.deploySteps("deploy-prod", "prod")

	// Pull requests: preview of dev.
	s := r.stack("preview", "dev")
	r.step("preview", func() error { _, err := s.Preview(ctx); return err })
	// The morning drift check: preview --refresh of prod, which is up.
	s = r.stack("drift", "prod")
	r.step("preview --refresh", func() error { _, err := s.Preview(ctx, optpreview.Refresh()); return err })

	for _, st := range emulated.Stacks {
		s := r.stack("deploy-"+st, st)
		r.step("destroy", func() error { _, err := s.Destroy(ctx, optdestroy.SuppressProgress()); return err })
	}

	r.a.Check(t)
	t.Logf("calls per role and command (principal, step, count, IAM actions):\n%s", r.a.Summary(t))
}

// The tier can fail: the pull-request role selecting prod (which its
// policy does not reach) makes calls the evaluator denies: the CLI's
// listing and reading of prod's state file.
func TestStateBackendCallsOutsideTheRoleAreDenied(t *testing.T) {
	r := newStateRun(t)
	r.a.Rec.Reset()
	r.a.Rec.SetTag("preview of prod as the preview role")
	if _, err := auto.SelectStackInlineSource(context.Background(), "prod", repo.Project, probe, r.opts("preview")...); err != nil {
		t.Fatal(err) // moto allows it; the evaluator must not
	}
	denied, err := r.a.Authz.Check(r.a.Rec.Calls(), r.a.Policies)
	if err != nil {
		t.Fatal(err)
	}
	var reads int
	prodState := "/stacks/" + repo.Project + "/prod.json"
	for _, d := range denied {
		if strings.Contains(d.Call.Path, prodState) || strings.Contains(d.Call.Query.Get("prefix"), prodState) {
			reads++
		}
	}
	if reads == 0 {
		t.Errorf("the preview role read prod's state and nothing was denied: %v", denied)
	}
}
