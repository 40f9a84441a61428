package workflows

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	Env         map[string]string `yaml:"env"`
	Environment string            `yaml:"environment"`
	Perm        map[string]string `yaml:"permissions"`
	Strategy    struct {
		Matrix map[string][]string `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []step `yaml:"steps"`
}

type step struct {
	Name string            `yaml:"name"`
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
	if got := j.Strategy.Matrix["stack"]; !slices.Equal(got, []string{"dev", "prod"}) {
		t.Errorf("matrix %v", got)
	}
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

func TestDriftExpectsNoChanges(t *testing.T) {
	w := load(t, "drift.yml")
	if _, ok := w.On["schedule"]; !ok {
		t.Error("drift is not scheduled")
	}
	if !strings.Contains(w.raw, "--expect-no-changes") || !strings.Contains(w.raw, "GITHUB_STEP_SUMMARY") || !strings.Contains(w.raw, "STACK: prod") {
		t.Error("drift must preview prod with --expect-no-changes and report the diff in the summary")
	}
}

func TestServiceImage(t *testing.T) {
	w := load(t, "service.yml")
	push, _ := w.On["push"].(map[string]any)
	pr, _ := w.On["pull_request"].(map[string]any)
	if push == nil || pr == nil || !slices.Contains(toStrings(push["paths"]), "service/**") || !slices.Contains(toStrings(push["branches"]), "main") {
		t.Fatalf("service triggers %v", w.On)
	}
	var build *step
	for _, s := range w.Jobs["image"].Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			build = &s
		}
	}
	if build == nil {
		t.Fatal("no docker/build-push-action step")
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
	if !strings.Contains(w.raw, "type=sha") || !strings.Contains(w.raw, "value=latest") {
		t.Error("image tags must include the commit sha and latest")
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
				if strings.Contains(s.Run, "scripts/access open") {
					open = i
				}
				if strings.Contains(s.Run, "scripts/access close") {
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
