package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"microk8s-platform/internal/repo"
)

type workflow struct {
	file string
	raw  string
	On   map[string]any         `yaml:"on"`
	Perm map[string]string      `yaml:"permissions"`
	Conc map[string]any         `yaml:"concurrency"`
	Env  map[string]string      `yaml:"env"`
	Jobs map[string]job         `yaml:"jobs"`
	Rest map[string]interface{} `yaml:",inline"`
}

type job struct {
	Timeout     int               `yaml:"timeout-minutes"`
	Env         map[string]string `yaml:"env"`
	Environment string            `yaml:"environment"`
	Perm        map[string]string `yaml:"permissions"`
	Strategy    struct {
		Matrix map[string][]string `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []step `yaml:"steps"`
}

type step struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	Env  map[string]string `yaml:"env"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]string `yaml:"with"`
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func load(t *testing.T, name string) workflow {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	w := workflow{file: name, raw: string(b)}
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

var all = []string{"ci.yml", "preview.yml", "deploy.yml", "service.yml", "drift.yml"}

func triggers(w workflow) []string {
	var out []string
	for k := range w.On {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// readmeTestCommand is the test command of the README's quick start.
func readmeTestCommand(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^(make \S+)\s+# every test`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("README quick start has no line `make ...  # every test ...`")
	}
	return m[1]
}

var pinned = regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)

func TestEveryActionIsPinnedToACommit(t *testing.T) {
	uses := regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$`)
	for _, name := range all {
		w := load(t, name)
		for _, m := range uses.FindAllStringSubmatch(w.raw, -1) {
			if !pinned.MatchString(m[1]) {
				t.Errorf("%s: %s is not pinned to a full commit sha", name, m[1])
			}
			if !strings.HasPrefix(m[2], "# v") {
				t.Errorf("%s: %s lacks the `# vX.Y.Z` comment saying which release the sha is", name, m[1])
			}
		}
	}
}

func TestNoLongLivedCloudKeys(t *testing.T) {
	keys := regexp.MustCompile(`(?i)aws[-_]access[-_]key|aws[-_]secret|secrets\.AWS_|GOOGLE_CREDENTIALS|credentials_json`)
	for _, name := range all {
		w := load(t, name)
		if k := keys.FindString(w.raw); k != "" {
			t.Errorf("%s mentions %q: cloud access must come from OIDC roles", name, k)
		}
		for jn, j := range w.Jobs {
			for _, s := range j.Steps {
				if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") && !strings.Contains(s.With["role-to-assume"], "vars.") {
					t.Errorf("%s/%s: configure-aws-credentials without role-to-assume from a variable", name, jn)
				}
			}
		}
	}
}

func TestCIRunsTheREADMETestCommand(t *testing.T) {
	w := load(t, "ci.yml")
	if got := triggers(w); !slices.Equal(got, []string{"pull_request", "push"}) {
		t.Errorf("ci triggers %v", got)
	}
	cmd := readmeTestCommand(t)
	var runs []string
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			runs = append(runs, s.Run)
		}
	}
	text := strings.Join(runs, "\n")
	for _, want := range []string{cmd, "staticcheck", "shellcheck", "actionlint"} {
		if !strings.Contains(text, want) {
			t.Errorf("ci.yml never runs %q", want)
		}
	}
	if len(w.Perm) != 1 || w.Perm["contents"] != "read" {
		t.Errorf("ci permissions %v, want contents: read only", w.Perm)
	}
}

func TestDeployIsManualPerStackAndLocked(t *testing.T) {
	w := load(t, "deploy.yml")
	if got := triggers(w); !slices.Equal(got, []string{"workflow_dispatch"}) {
		t.Fatalf("deploy triggers %v, want workflow_dispatch only", got)
	}
	var in struct {
		Inputs map[string]struct {
			Type    string   `yaml:"type"`
			Options []string `yaml:"options"`
		} `yaml:"inputs"`
	}
	b, _ := yaml.Marshal(w.On["workflow_dispatch"])
	_ = yaml.Unmarshal(b, &in)
	if got := in.Inputs["stack"].Options; !slices.Equal(got, []string{"dev", "prod"}) {
		t.Errorf("stack input options %v", got)
	}
	if got := in.Inputs["action"].Options; !slices.Equal(got, []string{"preview", "up", "destroy", "refresh"}) {
		t.Errorf("action input options %v", got)
	}
	if in.Inputs["confirm"].Type != "string" {
		t.Errorf("no free-text confirm input for destroy: %+v", in.Inputs["confirm"])
	}
	if g, _ := w.Conc["group"].(string); !strings.Contains(g, "inputs.stack") {
		t.Errorf("concurrency group %q is not per stack", g)
	}
	if c, ok := w.Conc["cancel-in-progress"].(bool); !ok || c {
		t.Errorf("cancel-in-progress %v: a running deploy must never be cancelled", w.Conc["cancel-in-progress"])
	}
	if w.Perm["id-token"] != "write" || w.Perm["contents"] != "read" || len(w.Perm) != 2 {
		t.Errorf("deploy permissions %v", w.Perm)
	}
	j := w.Jobs["deploy"]
	if j.Environment != "${{ inputs.stack }}" {
		t.Errorf("deploy environment %q, want one per stack", j.Environment)
	}
	if j.Env["LOCK_TABLE"] == "" {
		t.Error("deploy does not set LOCK_TABLE: make would run pulumi without the DynamoDB lock")
	}
	var runsMake, smoke, summary bool
	for _, s := range j.Steps {
		runsMake = runsMake || strings.Contains(s.Run, `make "$ACTION"`)
		smoke = smoke || (strings.Contains(s.Run, "scripts/smoke.sh") && strings.Contains(s.If, "'up'"))
		summary = summary || strings.Contains(s.Run, "GITHUB_STEP_SUMMARY") && strings.Contains(s.Run, "pulumi stack output")
	}
	if !runsMake || !smoke || !summary {
		t.Errorf("deploy steps: make under lock %v, smoke test after up %v, outputs in summary %v", runsMake, smoke, summary)
	}
	for _, name := range []string{"up", "preview", "destroy", "refresh"} {
		if !regexp.MustCompile(`(?m)^` + name + `:.*\n\t\$\(LOCKED\) \$\(PULUMI\) ` + name).MatchString(readFile(t, "Makefile")) {
			t.Errorf("make %s does not run pulumi %s under $(LOCKED)", name, name)
		}
	}
}

func readFile(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join(root(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPreviewOnPullRequests(t *testing.T) {
	w := load(t, "preview.yml")
	if got := triggers(w); !slices.Equal(got, []string{"pull_request"}) {
		t.Errorf("preview triggers %v", got)
	}
	pr, _ := w.On["pull_request"].(map[string]any)
	if paths, _ := pr["paths"].([]any); len(paths) == 0 {
		t.Error("preview runs on every pull request; it should run on program and stack changes")
	}
	want := map[string]string{"id-token": "write", "contents": "read", "pull-requests": "write"}
	if len(w.Perm) != len(want) {
		t.Errorf("permissions %v, want %v", w.Perm, want)
	}
	for k, v := range want {
		if w.Perm[k] != v {
			t.Errorf("permission %s = %q, want %q", k, w.Perm[k], v)
		}
	}
	j := w.Jobs["preview"]
	fork := "github.event.pull_request.head.repo.full_name"
	var notice, previews bool
	for _, s := range j.Steps {
		if strings.Contains(s.Run, "::notice") && strings.Contains(s.If, fork+" != github.repository") {
			notice = true
			continue
		}
		if !strings.Contains(s.If, fork+" == github.repository") {
			t.Errorf("step %q runs for forks too (if: %q); it would fail without an OIDC token", s.Name+s.Uses, s.If)
		}
		if strings.HasPrefix(s.Uses, "pulumi/actions@") {
			previews = s.With["command"] == "preview" && s.With["comment-on-pr"] == "true" && s.With["cloud-url"] != ""
		}
	}
	if !notice || !previews {
		t.Errorf("fork notice %v, pulumi preview with comment-on-pr and cloud-url %v", notice, previews)
	}
}

// A pull request's token subject is repo:<r>:pull_request whatever its
// branch (GitHub docs, "OpenID Connect reference", example subject claims),
// so the role it assumes is open to anyone who can push a branch: it
// reaches dev only (infra/backend PreviewStacks). prod is previewed by the
// deploy workflow, behind the prod environment.
func TestPullRequestsPreviewDevOnly(t *testing.T) {
	w := load(t, "preview.yml")
	j := w.Jobs["preview"]
	if len(j.Strategy.Matrix) != 0 || j.Env["STACK"] != "dev" {
		t.Errorf("preview job: matrix %v, STACK %q; want dev alone", j.Strategy.Matrix, j.Env["STACK"])
	}
	if slices.Contains(j.Strategy.Matrix["stack"], "prod") || strings.Contains(w.raw, "Pulumi.prod.yaml") || strings.Contains(w.raw, "stack-name: prod") {
		t.Error("preview.yml previews prod: pull requests must not reach prod")
	}
	var assumes bool
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Uses, "pulumi/actions@") && s.With["stack-name"] != "dev" {
			t.Errorf("pulumi/actions previews %q", s.With["stack-name"])
		}
		if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") {
			assumes = true
			if s.With["role-to-assume"] != "${{ vars.PREVIEW_ROLE_ARN }}" {
				t.Errorf("preview assumes %q", s.With["role-to-assume"])
			}
		}
	}
	if !assumes {
		t.Error("preview assumes no role")
	}
	if !regexp.MustCompile(`PreviewStacks:\s+\[\]string\{"dev"\}`).MatchString(readFile(t, "infra/backend/config.go")) {
		t.Error("infra/backend's default PreviewStacks is not [dev]")
	}
}

// The deploy role's ARN is read from the job's environment: one role per
// stack, trusted only by repo:<r>:environment:<stack> (infra/backend
// Roles). GitHub docs, "Store information in variables" (configuration
// variables precedence): when an organization, repository and environment
// all have a variable of one name, the environment-level one takes
// precedence. So each environment sets its own DEPLOY_ROLE_ARN and the
// README says to set none at repository level.
func TestDeployRoleComesFromTheStacksEnvironment(t *testing.T) {
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") {
					continue
				}
				role := s.With["role-to-assume"]
				if strings.Contains(role, "DEPLOY_ROLE_ARN") != (j.Environment != "") {
					t.Errorf("%s/%s: role %s with environment %q: the deploy role is used exactly in jobs bound to a stack's environment", name, jn, role, j.Environment)
				}
			}
		}
	}
	j := load(t, "deploy.yml").Jobs["deploy"]
	if j.Environment != "${{ inputs.stack }}" || j.Env["STACK"] != "${{ inputs.stack }}" {
		t.Errorf("deploy job environment %q STACK %q: the environment must be the stack deployed", j.Environment, j.Env["STACK"])
	}
}

// destroy runs only when the stack's name is typed again, and that check
// comes before anything else in the job.
func TestDestroyAsksForTheStackNameFirst(t *testing.T) {
	j := load(t, "deploy.yml").Jobs["deploy"]
	first := j.Steps[0]
	if !strings.Contains(first.If, "inputs.action == 'destroy'") || !strings.Contains(first.Run, `[ "$CONFIRM" != "$STACK" ]`) || !strings.Contains(first.Run, "exit 1") {
		t.Errorf("first step %q (if %q) does not stop an unconfirmed destroy:\n%s", first.Name, first.If, first.Run)
	}
	if j.Env["CONFIRM"] != "${{ inputs.confirm }}" {
		t.Errorf("CONFIRM = %q", j.Env["CONFIRM"])
	}
}

// Every job that runs pulumi checks its stack file before any cloud call.
func TestStackFileIsCheckedBeforeAnyCloudCall(t *testing.T) {
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			check, cloud := -1, -1
			for i, s := range j.Steps {
				if strings.Contains(s.Run, "make stackcheck") && check < 0 {
					check = i
				}
				if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") && cloud < 0 {
					cloud = i
				}
			}
			if cloud >= 0 && (check < 0 || check > cloud) {
				t.Errorf("%s/%s: assumes a cloud role before make stackcheck", name, jn)
			}
		}
	}
	if !regexp.MustCompile(`(?m)^stackcheck:.*\n\t\$\(GO\) run \./scripts/stackcheck --stack \$\(STACK\)`).MatchString(readFile(t, "Makefile")) {
		t.Error("make stackcheck does not run scripts/stackcheck for $(STACK)")
	}
}

// A job must end before the credentials it assumed do: configure-aws-
// credentials asks for role-duration-seconds (its action.yml: "Default is
// one hour"), which may not exceed the role's MaxSessionDuration (IAM
// AssumeRoleWithWebIdentity DurationSeconds), and the job's timeout-minutes
// bounds everything after it.
func TestJobsEndWithinTheRoleSession(t *testing.T) {
	m := regexp.MustCompile(`(?m)^const MaxSessionSeconds = (\d+)$`).FindStringSubmatch(readFile(t, "infra/backend/backend.go"))
	if m == nil {
		t.Fatal("infra/backend has no MaxSessionSeconds")
	}
	maxSession, _ := strconv.Atoi(m[1])
	n := 0
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			for _, s := range j.Steps {
				if !strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") {
					continue
				}
				n++
				d, err := strconv.Atoi(s.With["role-duration-seconds"])
				if err != nil {
					t.Errorf("%s/%s: role-duration-seconds %q not set", name, jn, s.With["role-duration-seconds"])
					continue
				}
				if d > maxSession {
					t.Errorf("%s/%s: role-duration-seconds %d exceeds the role's %d", name, jn, d, maxSession)
				}
				if j.Timeout == 0 || j.Timeout*60 > d {
					t.Errorf("%s/%s: timeout-minutes %d outlives a %d s session", name, jn, j.Timeout, d)
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d jobs assume a role, want deploy, preview and drift", n)
	}
}

// The drift check runs in a concurrency group of its own: sharing
// deploy-prod would make it the pending run of that group, and GitHub
// cancels an already pending run when a newer one queues (docs,
// "Control the concurrency of workflows and jobs"), so a queued prod deploy
// could be cancelled by a drift run, or a drift run by a deploy.
func TestDriftNeverCompetesWithDeploys(t *testing.T) {
	drift, deploy := load(t, "drift.yml"), load(t, "deploy.yml")
	dg, _ := drift.Conc["group"].(string)
	pg, _ := deploy.Conc["group"].(string)
	if dg == "" || strings.HasPrefix(dg, strings.TrimSuffix(pg, "${{ inputs.stack }}")) {
		t.Errorf("drift concurrency group %q overlaps the deploy groups %q", dg, pg)
	}
	if c, ok := drift.Conc["cancel-in-progress"].(bool); !ok || c {
		t.Errorf("drift cancel-in-progress %v", drift.Conc["cancel-in-progress"])
	}
}

// While a deploy holds the lock (scripts/stacklock status prints
// "<key>: LOCKED"), drift skips pulumi: a half-applied deploy is not drift.
func TestDriftSkipsWhileTheDeployLockIsHeld(t *testing.T) {
	j := load(t, "drift.yml").Jobs["drift"]
	lock := -1
	for i, s := range j.Steps {
		if strings.Contains(s.Run, "stacklock status") {
			lock = i
			if s.ID != "lock" || !strings.Contains(s.Run, ": LOCKED") || !strings.Contains(s.Run, "held=true") {
				t.Errorf("lock step %q does not set held from the status", s.Name)
			}
		}
		if runsPulumi(s) || accessCall.MatchString(s.Run) && strings.Contains(s.Run, "access open") {
			if lock < 0 || lock > i {
				t.Errorf("step %q runs before the lock is checked", s.Name)
			}
			if !strings.HasPrefix(s.If, "steps.lock.outputs.held == 'false'") {
				t.Errorf("step %q runs while the lock is held (if: %q)", s.Name, s.If)
			}
		}
	}
	if lock < 0 {
		t.Fatal("drift never reads the deploy lock")
	}
	if j.Env["LOCK_TABLE"] == "" {
		t.Error("drift has no LOCK_TABLE")
	}
	// What status prints when the lock is held.
	if !strings.Contains(readFile(t, "scripts/stacklock/main.go"), `"%s: LOCKED, %s"`) {
		t.Error("scripts/stacklock status no longer prints \"<key>: LOCKED\"")
	}
}

// Drift opens or updates one issue; a failed preview is an error (the run
// fails), never reported as drift.
func TestDriftOpensOneIssueAndErrorsAreErrors(t *testing.T) {
	w := load(t, "drift.yml")
	if w.Perm["issues"] != "write" || w.Perm["id-token"] != "write" || w.Perm["contents"] != "read" || len(w.Perm) != 3 {
		t.Errorf("drift permissions %v", w.Perm)
	}
	j := w.Jobs["drift"]
	var preview, issue *step
	for i := range j.Steps {
		s := &j.Steps[i]
		if s.ID == "preview" {
			preview = s
		}
		if strings.Contains(s.Run, "gh issue create") {
			issue = s
		}
	}
	if preview == nil || issue == nil {
		t.Fatal("drift has no preview step with id preview, or no issue step")
	}
	// The failure branch: pulumi fails -> result=error and exit 1, before
	// anything counts changes.
	fail := regexp.MustCompile(`(?s)if ! pulumi preview [^\n]*--refresh --json[^\n]*; then\n(.*?)\n\s*fi\n`).FindStringSubmatch(preview.Run)
	if fail == nil || !strings.Contains(fail[1], "result=error") || !strings.Contains(fail[1], "exit 1") || strings.Contains(fail[1], "drift\"") {
		t.Errorf("a failed preview is not reported as an error:\n%s", preview.Run)
	}
	// Changes are counted as --expect-no-changes counts them (pulumi/pulumi
	// pkg/engine/update.go HasChanges ignores same, read, discard and
	// read-replacement).
	if !strings.Contains(preview.Run, `IN("same","read","discard","read-replacement") | not`) {
		t.Error("drift does not count changes the way --expect-no-changes does")
	}
	if issue.If != "steps.preview.outputs.result == 'drift'" {
		t.Errorf("issue step runs on %q", issue.If)
	}
	// One issue: an open one with the title gets a comment instead.
	if !strings.Contains(issue.Run, "gh issue list --state open") || !strings.Contains(issue.Run, "gh issue comment") || issue.With != nil && issue.With["title"] != "" {
		t.Errorf("the issue step does not reuse the open issue:\n%s", issue.Run)
	}
	if issue.Env == nil || issue.Env["GH_TOKEN"] == "" {
		t.Error("gh needs GH_TOKEN")
	}
}

// The runner's address is looked up once; open and close both use it, so
// close removes exactly the rule open added even if the runner's egress
// address changes in between (scripts/access: without --cidr each call
// looks up the address again).
func TestAccessClosesTheAddressItOpened(t *testing.T) {
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			set := -1
			for i, s := range j.Steps {
				if strings.Contains(s.Run, `ACCESS_CIDR=`) && strings.Contains(s.Run, "GITHUB_ENV") {
					set = i
					if !strings.Contains(s.Run, "$(access cidr)") {
						t.Errorf("%s/%s: the runner's address does not come from access cidr (IPv4, /32):\n%s", name, jn, s.Run)
					}
				}
				for _, verb := range []string{"open", "close"} {
					if !strings.Contains(s.Run, "access "+verb) {
						continue
					}
					for _, line := range strings.Split(s.Run, "\n") {
						if accessCall.MatchString(line) && strings.Contains(line, "access "+verb) && !strings.Contains(line, `--cidr "$ACCESS_CIDR"`) {
							t.Errorf("%s/%s: %q does not pass the address found once", name, jn, strings.TrimSpace(line))
						}
					}
					if set < 0 || set > i {
						t.Errorf("%s/%s: access %s before the address is set", name, jn, verb)
					}
					if verb == "close" && !strings.Contains(s.If, "env.ACCESS_CIDR != ''") {
						t.Errorf("%s/%s: close runs without an address (if %q)", name, jn, s.If)
					}
				}
			}
		}
	}
}

// The service image workflow.
func TestServiceImage(t *testing.T) {
	w := load(t, "service.yml")
	push, _ := w.On["push"].(map[string]any)
	pr, _ := w.On["pull_request"].(map[string]any)
	if push == nil || pr == nil || !slices.Contains(toStrings(push["paths"]), "service/**") || !slices.Contains(toStrings(push["branches"]), "main") {
		t.Fatalf("service triggers %v", w.On)
	}
	var build, meta *step
	for i, s := range w.Jobs["image"].Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			build = &w.Jobs["image"].Steps[i]
		}
		if strings.HasPrefix(s.Uses, "docker/metadata-action@") {
			meta = &w.Jobs["image"].Steps[i]
		}
	}
	if build == nil || meta == nil {
		t.Fatal("no docker/build-push-action or docker/metadata-action step")
	}
	if build.With["push"] != "${{ github.event_name == 'push' }}" {
		t.Errorf("push: %q; pull requests must build without pushing", build.With["push"])
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if !strings.Contains(build.With["platforms"], p) {
			t.Errorf("platforms %q lack %s", build.With["platforms"], p)
		}
	}
	if build.With["sbom"] != "true" || !strings.Contains(build.With["provenance"], "mode=max") {
		t.Errorf("provenance %q sbom %q", build.With["provenance"], build.With["sbom"])
	}
	if !strings.Contains(meta.With["tags"], "type=sha") {
		t.Error("image tags must include the commit sha")
	}
}

// No image is ever tagged latest: not by a tag rule, and not by the
// metadata action's flavor, whose default latest=auto adds latest for
// type=match, type=semver, type=pep440 and type=ref,event=tag
// (docker/metadata-action v6.2.0 README, "Latest tag" and "flavor input").
func TestServiceImageIsNeverTaggedLatest(t *testing.T) {
	w := load(t, "service.yml")
	n := 0
	for _, s := range w.Jobs["image"].Steps {
		if !strings.HasPrefix(s.Uses, "docker/metadata-action@") {
			continue
		}
		n++
		if strings.Contains(s.With["tags"], "latest") {
			t.Errorf("tags %q name latest", s.With["tags"])
		}
		if !regexp.MustCompile(`(?m)^\s*latest=false\s*$`).MatchString(s.With["flavor"]) {
			t.Errorf("flavor %q keeps the default latest=auto", s.With["flavor"])
		}
	}
	if n != 1 {
		t.Errorf("%d metadata-action steps", n)
	}
}

// The service workflow asks for what it uses: reading the repository and
// pushing to GHCR. Its provenance and SBOM are BuildKit attestations pushed
// with the image (build-push-action provenance/sbom inputs), which need
// neither id-token nor attestations.
func TestServicePermissionsAreWhatItUses(t *testing.T) {
	w := load(t, "service.yml")
	if len(w.Perm) != 2 || w.Perm["contents"] != "read" || w.Perm["packages"] != "write" {
		t.Errorf("service permissions %v, want contents: read, packages: write", w.Perm)
	}
	for jn, j := range w.Jobs {
		if len(j.Perm) != 0 {
			t.Errorf("job %s widens permissions: %v", jn, j.Perm)
		}
		for _, s := range j.Steps {
			if strings.Contains(s.Uses, "attest") {
				t.Errorf("%s uses %s, which needs id-token and attestations", jn, s.Uses)
			}
		}
	}
}

// actionRuntimes: each action's current major and the runtime its
// releases of that major declare, read from its action.yml (fetched from
// the action's GitHub repository: git show <tag>:action.yml, runs.using,
// at the newest tag of the major). The runner moves JavaScript actions
// from Node 20 to Node 24 and then requires Node 24 (actions/runner pull
// request #3948, "Node 20 -> Node 24 migration"), so every pin is a node24
// release of its action's current major. Keyed by action and major, not by
// commit: Dependabot's bump within a major (a new sha and `# vX.Y.Z`
// comment) passes, and a new major fails here until someone reads its
// runs.using and adds it.
var actionRuntimes = map[string]string{
	"actions/checkout@v7":                      "node24", // v7.0.1
	"actions/setup-go@v7":                      "node24", // v7.0.0
	"aws-actions/configure-aws-credentials@v6": "node24", // v6.2.3
	"pulumi/actions@v7":                        "node24", // v7.0.0
	"docker/setup-qemu-action@v4":              "node24", // v4.2.0
	"docker/setup-buildx-action@v4":            "node24", // v4.3.0
	"docker/login-action@v4":                   "node24", // v4.1.0
	"docker/metadata-action@v6":                "node24", // v6.2.0
	"docker/build-push-action@v7":              "node24", // v7.3.0
}

// pinMajor is an action pin as actionRuntimes keys it: owner/name@vMAJOR,
// from "owner/name@<sha>" and its "# vX.Y.Z" comment.
func pinMajor(uses, version string) string {
	action, _, _ := strings.Cut(uses, "@")
	major, _, _ := strings.Cut(version, ".")
	return action + "@" + major
}

func TestActionsAreCurrentNode24Releases(t *testing.T) {
	uses := regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(\S+)\s*# (v\S+)\s*$`)
	for _, name := range all {
		for _, m := range uses.FindAllStringSubmatch(load(t, name).raw, -1) {
			key := pinMajor(m[1], m[2])
			using, ok := actionRuntimes[key]
			switch {
			case !ok:
				t.Errorf("%s: %s (%s) is a major whose action.yml was not checked; read its runs.using and add %s to actionRuntimes", name, m[1], m[2], key)
			case using != "node24":
				t.Errorf("%s: %s runs on %s", name, key, using)
			}
		}
	}
}

// A Dependabot bump within a major keeps passing; a new major does not.
func TestActionPinsAreKeyedByMajor(t *testing.T) {
	if got := pinMajor("actions/checkout@0123456789abcdef0123456789abcdef01234567", "v7.1.0"); got != "actions/checkout@v7" {
		t.Errorf("pinMajor = %s", got)
	}
	if _, ok := actionRuntimes[pinMajor("actions/checkout@0123456789abcdef0123456789abcdef01234567", "v8.0.0")]; ok {
		t.Error("an unchecked major passes")
	}
}

// Dependabot keeps the action pins and both Go modules current.
func TestDependabotWatchesActionsAndGoModules(t *testing.T) {
	var cfg struct {
		Version int `yaml:"version"`
		Updates []struct {
			Ecosystem   string   `yaml:"package-ecosystem"`
			Directory   string   `yaml:"directory"`
			Directories []string `yaml:"directories"`
		} `yaml:"updates"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, ".github/dependabot.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	dirs := map[string][]string{}
	for _, u := range cfg.Updates {
		if u.Directory != "" {
			dirs[u.Ecosystem] = append(dirs[u.Ecosystem], u.Directory)
		}
		dirs[u.Ecosystem] = append(dirs[u.Ecosystem], u.Directories...)
	}
	if cfg.Version != 2 || !slices.Contains(dirs["github-actions"], "/") {
		t.Errorf("dependabot: version %d, github-actions %v", cfg.Version, dirs["github-actions"])
	}
	for _, mod := range []string{"/", "/service"} {
		if _, err := os.Stat(filepath.Join(root(t), mod, "go.mod")); err != nil {
			t.Fatalf("%s: %v", mod, err)
		}
		if !slices.Contains(dirs["gomod"], mod) {
			t.Errorf("dependabot does not watch the Go module in %s", mod)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// runsPulumi reports whether a step runs pulumi against a stack.
func runsPulumi(s step) bool {
	if strings.HasPrefix(s.Uses, "pulumi/actions@") {
		return s.With["command"] != ""
	}
	return regexp.MustCompile(`pulumi (preview|up|destroy|refresh)|make "\$ACTION"|make (up|preview|destroy|refresh|network)\b`).MatchString(s.Run)
}

func TestPulumiJobsOpenAndAlwaysCloseRunnerAccess(t *testing.T) {
	jobs := 0
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			first, last := -1, -1
			for i, s := range j.Steps {
				if runsPulumi(s) {
					if first < 0 {
						first = i
					}
					last = i
				}
			}
			if first < 0 {
				continue
			}
			jobs++
			open, close := -1, -1
			for i, s := range j.Steps {
				if accessCall.MatchString(s.Run) && strings.Contains(s.Run, "access open") {
					open = i
				}
				if accessCall.MatchString(s.Run) && strings.Contains(s.Run, "access close") {
					close = i
					if !strings.Contains(s.If, "always()") {
						t.Errorf("%s/%s: closing access runs only on success (if: %q)", name, jn, s.If)
					}
				}
			}
			if open < 0 || open > first {
				t.Errorf("%s/%s: runs pulumi without first opening access for the runner", name, jn)
			}
			if close < last {
				t.Errorf("%s/%s: does not close the runner's access after pulumi", name, jn)
			}
		}
	}
	if jobs != 3 {
		t.Errorf("%d jobs run pulumi, want preview, deploy and drift", jobs)
	}
}

// accessCall is a step line that runs the access helper.
var accessCall = regexp.MustCompile(`(^|[\s;(])access (open|close|sweep|cidr)\b`)

// go run exits 1 whatever the program returns (cmd/go: "exit status N" is
// reported, the exit code is 1; checked here with a program that exits 3),
// so a workflow that reads a helper's exit code (access open's 3: no
// network yet) must run the binary: make helpers builds them into bin/,
// which the step adds to GITHUB_PATH before any use, and make runs the
// lock helper named by STACKLOCK.
func TestHelpersRunAsBinariesNotGoRun(t *testing.T) {
	goRun := regexp.MustCompile(`go run \S*scripts/`)
	for _, name := range all {
		w := load(t, name)
		if m := goRun.FindString(w.raw); m != "" {
			t.Errorf("%s runs %q: build the helper (make helpers) and run the binary", name, m)
		}
		for jn, j := range w.Jobs {
			built := -1
			for i, s := range j.Steps {
				if strings.Contains(s.Run, "make helpers") && strings.Contains(s.Run, `"$PWD/bin" >> "$GITHUB_PATH"`) && built < 0 {
					built = i
				}
				uses := accessCall.MatchString(s.Run) || strings.Contains(s.Run, "stacklock ") ||
					regexp.MustCompile(`make "\$ACTION"|make (up|preview|destroy|refresh|network)\b`).MatchString(s.Run)
				if uses && (built < 0 || built > i) {
					t.Errorf("%s/%s: step %q uses a helper before make helpers put it on PATH", name, jn, s.Name)
				}
				if uses && strings.Contains(s.Run, "make ") && j.Env["STACKLOCK"] != "stacklock" && w.Env["STACKLOCK"] != "stacklock" {
					t.Errorf("%s/%s: make runs the lock helper with go run (set STACKLOCK: stacklock)", name, jn)
				}
			}
		}
	}
	mk := readFile(t, "Makefile")
	if !regexp.MustCompile(`(?m)^helpers:.*\n\t\$\(GO\) build -o bin/ \./scripts/access \./scripts/stacklock$`).MatchString(mk) {
		t.Error("make helpers does not build scripts/access and scripts/stacklock into bin/")
	}
	if !strings.Contains(mk, "LOCKED       = $(if $(LOCK_TABLE),$(STACKLOCK) run") {
		t.Error("make's lock wrapper does not run $(STACKLOCK)")
	}
}

// One Pulumi version: the SDK version the root go.mod pins. The workflows
// install it (PULUMI_VERSION from scripts/tools/pulumi-version.sh), the
// tools build stamps it on the CLI it builds, and that CLI's wrapper module
// pins github.com/pulumi/pulumi/pkg/v3 at it.
func TestOnePulumiVersionFromGoMod(t *testing.T) {
	modVersion := func(file, module string) string {
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + ` v(\S+)`).FindStringSubmatch(readFile(t, file))
		if m == nil {
			t.Fatalf("%s does not require %s", file, module)
		}
		return m[1]
	}
	want := modVersion("go.mod", "github.com/pulumi/pulumi/sdk/v3")
	out, err := exec.Command(filepath.Join(root(t), "scripts/tools/pulumi-version.sh")).Output()
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("scripts/tools/pulumi-version.sh prints %q (%v), go.mod pins %s", out, err, want)
	}
	if got := modVersion("scripts/tools/pulumi/go.mod", "github.com/pulumi/pulumi/pkg/v3"); got != want {
		t.Errorf("the CLI the tools build is pkg/v3 %s, the program's SDK %s", got, want)
	}
	if build := readFile(t, "scripts/tools/build.sh"); !strings.Contains(build, `PULUMI_VERSION=$("$here/pulumi-version.sh")`) || strings.Contains(build, "PULUMI_VERSION="+want) {
		t.Error("scripts/tools/build.sh does not take the CLI's version from pulumi-version.sh")
	}
	n := 0
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			set := -1
			for i, s := range j.Steps {
				if strings.Contains(s.Run, `PULUMI_VERSION=$(scripts/tools/pulumi-version.sh)`) && strings.Contains(s.Run, "GITHUB_ENV") {
					set = i
				}
				if !strings.HasPrefix(s.Uses, "pulumi/actions@") {
					continue
				}
				n++
				if s.With["pulumi-version"] != "${{ env.PULUMI_VERSION }}" {
					t.Errorf("%s/%s: pulumi/actions installs %q, not the go.mod version", name, jn, s.With["pulumi-version"])
				}
				if set < 0 || set > i {
					t.Errorf("%s/%s: PULUMI_VERSION is not set before pulumi/actions", name, jn)
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d pulumi/actions steps, want deploy, preview and drift", n)
	}
}

// Every job that assumes a role prints its token's subject first: the one
// thing to compare with the role's trust policy when the assume fails
// (the name or the immutable form, README).
func TestJobsPrintTheirOIDCSubjectBeforeAssumingARole(t *testing.T) {
	for _, name := range all {
		for jn, j := range load(t, name).Jobs {
			sub := -1
			for i, s := range j.Steps {
				if strings.Contains(s.Run, "scripts/oidc-subject.sh") {
					sub = i
				}
				if strings.HasPrefix(s.Uses, "aws-actions/configure-aws-credentials@") && (sub < 0 || sub > i) {
					t.Errorf("%s/%s: assumes a role without printing its OIDC subject first", name, jn)
				}
			}
		}
	}
}

// The CLI lists .pulumi/stacks/ for legacy (pre-project) stack files on
// every command unless told not to (pulumi/pulumi v3.274.1
// pkg/backend/diy/backend.go, DIYBackendNoLegacyWarning); the bucket has
// none and no role may list there, so every job that runs pulumi says so.
func TestPulumiJobsSkipTheLegacyStackListing(t *testing.T) {
	for _, name := range all {
		w := load(t, name)
		for jn, j := range w.Jobs {
			runs := false
			for _, s := range j.Steps {
				runs = runs || runsPulumi(s)
			}
			if runs && j.Env["PULUMI_DIY_BACKEND_NO_LEGACY_WARNING"] != "true" {
				t.Errorf("%s/%s runs pulumi without PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", name, jn)
			}
		}
	}
}
