package workflows

// The workflows, for real: the deploy, preview and drift jobs' steps run in
// bash (gha_test.go) against moto, in a copy of this repository whose
// stacks the administrator set up with the README's own commands, with the
// environment each workflow gives them: the helpers built by make helpers,
// make stackcheck, the OIDC subject, the role each job assumes (its trust
// policy evaluated with the subject GitHub gives that job), access
// cidr/open/close and the sweep, stacklock around pulumi, make network on
// a first deploy, the smoke test, the summary. The pulumi they run is the
// real CLI with a stand-in program (standin_test.go). Every AWS call any
// step makes is recorded and evaluated against the policy of the role the
// job assumed; a denied call fails the test and names it.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"microk8s-platform/infra/backend"
	"microk8s-platform/infra/backend/emulated"
	"microk8s-platform/internal/commentstest"
	"microk8s-platform/internal/iampolicy"
	"microk8s-platform/internal/repo"
)

// The repository the tier pretends to be: created after 2026-07-15, so its
// tokens carry the immutable subject, and the bootstrap knows its ids.
var ghRepo = backend.GitHubRepo{Name: "acme/platform", OwnerID: "123456", ID: "456789"}

const runnerIP = "203.0.113.7"

// tier is one emulated account, one checkout, and what the steps need
// around them.
type tier struct {
	t       *testing.T
	a       *emulated.Account
	dir     string // the checkout
	cli     string // the real Pulumi CLI
	baseEnv []string
	mu      sync.Mutex
	subject string // what the token endpoint puts in sub
	ghLog   string
}

func copyRepo(t *testing.T) string {
	t.Helper()
	root, _ := repo.Root()
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	dir := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		src := filepath.Join(root, f)
		info, err := os.Stat(src)
		if err != nil {
			continue // deleted in the work tree
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newTier(t *testing.T) *tier {
	t.Helper()
	a := emulated.Start(t)
	tr := &tier{t: t, a: a, dir: copyRepo(t), cli: filepath.Join(emulated.PulumiCLI(t), "pulumi")}
	home := t.TempDir()

	// The job's OIDC token, as the runner's token service hands it out.
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer request-token" || r.URL.Query().Get("audience") != backend.GitHubAudience {
			http.Error(w, "bad token request", http.StatusUnauthorized)
			return
		}
		tr.mu.Lock()
		sub := tr.subject
		tr.mu.Unlock()
		claims, _ := json.Marshal(map[string]any{"sub": sub, "aud": backend.GitHubAudience, "iss": "https://" + backend.GitHubIssuer})
		enc := base64.RawURLEncoding.EncodeToString
		_ = json.NewEncoder(w).Encode(map[string]string{"value": enc([]byte(`{"alg":"RS256"}`)) + "." + enc(claims) + ".c2ln"})
	}))
	t.Cleanup(tokens.Close)
	checkip := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, runnerIP) }))
	t.Cleanup(checkip.Close)

	// pulumi is the stand-in, gh a recorder that finds no open issue.
	shims := t.TempDir()
	exe, _ := os.Executable()
	tr.ghLog = filepath.Join(shims, "gh.log")
	for name, body := range map[string]string{
		"pulumi": "#!/bin/sh\nPULUMI_STANDIN=1 exec " + exe + " \"$@\"\n",
		"gh":     "#!/bin/sh\necho \"$*\" >> " + tr.ghLog + "\n",
	} {
		if err := os.WriteFile(filepath.Join(shims, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "PULUMI_") || k == "PATH" || k == "HOME" {
			continue
		}
		tr.baseEnv = append(tr.baseEnv, kv)
	}
	tr.baseEnv = append(tr.baseEnv,
		"PATH="+shims+":"+os.Getenv("PATH"), "HOME="+home, "PULUMI_HOME="+filepath.Join(home, ".pulumi"),
		"PULUMI_SKIP_UPDATE_CHECK=true", "PULUMI_REAL_CLI="+tr.cli,
		"STANDIN_MOTO_URL="+a.MotoURL, "STANDIN_APP_URL="+commentstest.Start(t),
		// What the runner and GitHub give every job; the emulator's
		// endpoint stands for AWS's.
		"ACTIONS_ID_TOKEN_REQUEST_URL="+tokens.URL+"/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token",
		"ACCESS_LOOKUP_URL="+checkip.URL, "AWS_ENDPOINT_URL="+a.Rec.URL, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "SMOKE_TRIES=3",
	)
	tr.setUpStacks()
	return tr
}

// setUpStacks is the administrator's per-stack set-up, as README "Deploy
// to AWS" gives it, with the real CLI in the checkout.
func (tr *tier) setUpStacks() {
	t := tr.t
	tr.a.Rec.SetTag("admin: per-stack set-up")
	for _, st := range emulated.Stacks {
		for _, args := range [][]string{
			{"stack", "init", st, "--secrets-provider", tr.a.SecretsProviders[st]},
			{"config", "set", "--stack", st, "--path", "adminCidrs[0]", "198.51.100.7/32"},
			{"config", "set", "--stack", st, "sshPublicKey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"},
			{"config", "set", "--stack", st, "--secret", "sshPrivateKey"}, // < the key file
			{"config", "set", "--stack", st, "--secret", "dbPassword", "s3cret-" + st},
			{"config", "set", "--stack", st, "--path", "budgetEmails[0]", "you@example.com"},
			{"config", "set", "--stack", st, "--secret", "alertWebhookUrl", "https://hooks.example.com/alerts"},
		} {
			cmd := exec.Command(tr.cli, args...)
			cmd.Dir = tr.dir
			if args[len(args)-1] == "sshPrivateKey" {
				cmd.Stdin = strings.NewReader("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
			}
			cmd.Env = append(append(append([]string{}, tr.baseEnv...), tr.a.RoleEnv(emulated.Admin)...), "PULUMI_BACKEND_URL="+tr.a.LoginURL)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("admin: pulumi %v: %v\n%s", args, err, out)
			}
		}
	}
}

// assume is AssumeRoleWithWebIdentity: the role named by the ARN, if its
// trust policy admits the token's subject.
func (tr *tier) assume(roleARN, subject string) ([]string, error) {
	name, ok := strings.CutPrefix(roleARN, "arn:aws:iam::"+tr.a.Scope.Account+":role/"+repo.Project+"-")
	if !ok {
		return nil, fmt.Errorf("%q is not a role of the bootstrap", roleARN)
	}
	for _, spec := range backend.Roles(emulated.Stacks, emulated.PreviewStacks, emulated.DriftStacks) {
		if spec.Name != name {
			continue
		}
		trust := backend.TrustPolicy("arn:aws:iam::"+tr.a.Scope.Account+":oidc-provider/"+backend.GitHubIssuer, ghRepo, spec.Subjects)
		ok, err := iamAllowed(trust, subject)
		if err != nil || !ok {
			return nil, fmt.Errorf("the trust policy of %s does not admit %s (%v)", name, subject, err)
		}
		return tr.a.RoleEnv(name), nil
	}
	return nil, fmt.Errorf("no role %s", name)
}

// job runs one job of a workflow file as GitHub would run it for an event.
func (tr *tier) job(file, job, event string, inputs map[string]string) *ghaRun {
	t := tr.t
	t.Helper()
	w := load(t, file)
	stack := inputs["stack"]
	vars := map[string]string{
		"AWS_REGION": "us-east-1", "PULUMI_BACKEND_URL": tr.a.LoginURL, "LOCK_TABLE": tr.a.Scope.LockTable,
		"PREVIEW_ROLE_ARN": tr.roleARN("preview"), "DRIFT_ROLE_ARN": tr.roleARN("drift"),
	}
	if stack != "" { // the environment's own variable
		vars["DEPLOY_ROLE_ARN"] = tr.roleARN("deploy-" + stack)
	}
	r := &ghaRun{
		t: t, w: w, job: job, dir: tr.dir, inputs: inputs, vars: vars, files: t.TempDir(), baseEnv: tr.baseEnv, assume: tr.assume,
		github: map[string]string{
			"repository": ghRepo.Name, "run_id": "4242", "server_url": "https://github.com", "event_name": event,
			"ref": "refs/heads/main", "token": "ghs_test_token",
			"event.pull_request.head.repo.full_name": ghRepo.Name, "event.pull_request.number": "7",
		},
	}
	r.subject = r.subjectFor(ghRepo.SubjectPrefixes()[1])
	tr.mu.Lock()
	tr.subject = r.subject
	tr.mu.Unlock()
	tr.a.Rec.SetTag(fmt.Sprintf("%s %s %v", file, job, inputs))
	r.run()
	return r
}

func (tr *tier) roleARN(name string) string {
	return "arn:aws:iam::" + tr.a.Scope.Account + ":role/" + repo.Project + "-" + name
}

// group is the stack's security group in moto, and its ingress rules as
// "port cidr description".
func (tr *tier) group(stack string) (string, []string) {
	c := ec2.NewFromConfig(tr.a.AdminConfig(tr.t))
	out, err := c.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("tag:stack"), Values: []string{stack}}, {Name: aws.String("tag:project"), Values: []string{repo.Project}},
	}})
	if err != nil {
		tr.t.Fatal(err)
	}
	if len(out.SecurityGroups) == 0 {
		return "", nil
	}
	g := out.SecurityGroups[0]
	var rules []string
	for _, p := range g.IpPermissions {
		for _, r := range p.IpRanges {
			rules = append(rules, fmt.Sprintf("%d %s %s", aws.ToInt32(p.FromPort), aws.ToString(r.CidrIp), aws.ToString(r.Description)))
		}
	}
	return aws.ToString(g.GroupId), rules
}

// succeeded fails the test unless every step that ran exited 0.
func succeeded(t *testing.T, r *ghaRun) {
	t.Helper()
	for _, res := range r.results {
		if !res.skipped && res.code != 0 {
			t.Fatalf("%s/%s: step %q exited %d\n%s", r.w.file, r.job, res.name, res.code, r)
		}
	}
}

func TestWorkflowStepsForReal(t *testing.T) {
	tr := newTier(t)
	deploy := func(stack, action, confirm string) *ghaRun {
		return tr.job("deploy.yml", "deploy", "workflow_dispatch", map[string]string{"stack": stack, "action": action, "confirm": confirm})
	}

	// A stack's first deploy: no network, so access open exits 3 and the
	// job creates the network alone, opens it, then runs the full up.
	r := deploy("dev", "up", "")
	succeeded(t, r)
	if out := r.step("Open SSH and the Kubernetes API to this runner").output; !strings.Contains(out, "First deploy of dev") || !strings.Contains(out, "opened 16443 to "+runnerIP+"/32") {
		t.Errorf("the first deploy did not create the network and open it:\n%s", out)
	}
	if out := r.step("Smoke test through Kong").output; !strings.Contains(out, "smoke: OK") {
		t.Errorf("smoke test:\n%s", out)
	}
	if out := r.step("This job's OIDC subject (what the role must trust)").output; !strings.Contains(out, "OIDC subject: repo:acme@123456/platform@456789:environment:dev") {
		t.Errorf("OIDC subject step:\n%s", out)
	}
	sg, rules := tr.group("dev")
	if sg == "" || len(rules) != 0 {
		t.Fatalf("after the first deploy: group %q, rules %v (the runner's access must be closed)", sg, rules)
	}

	// A runner that died left its rule open an hour and a half ago: the
	// next job's open sweeps it.
	c := ec2.NewFromConfig(tr.a.AdminConfig(t))
	stale := "temporary deploy access (scripts/access) opened " + time.Now().Add(-90*time.Minute).UTC().Format(time.RFC3339)
	if _, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.9/32"), Description: aws.String(stale)}},
	}}}); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"preview", "refresh", "up"} {
		r = deploy("dev", action, "")
		succeeded(t, r)
		if out := r.step("Open SSH and the Kubernetes API to this runner").output; strings.Contains(out, "First deploy") {
			t.Errorf("%s: a deployed stack was treated as a first deploy:\n%s", action, out)
		}
	}
	if _, rules := tr.group("dev"); len(rules) != 0 {
		t.Errorf("rules left after the runs: %v (the stale rule must be swept, the runner's closed)", rules)
	}

	// Pull requests preview dev with the preview role.
	r = tr.job("preview.yml", "preview", "pull_request", map[string]string{})
	succeeded(t, r)

	// The drift check before prod has a network: nothing to drift from.
	r = tr.job("drift.yml", "drift", "schedule", map[string]string{})
	succeeded(t, r)
	if r.outputs["open"]["deployed"] != "false" || !r.step("pulumi preview --refresh").skipped {
		t.Errorf("drift on an undeployed prod: open %v, preview skipped %v\n%s", r.outputs["open"], r.step("pulumi preview --refresh").skipped, r)
	}
	if b, _ := os.ReadFile(tr.ghLog); len(b) != 0 {
		t.Errorf("drift on an undeployed prod touched issues: %s", b)
	}

	// prod's first deploy, then a clean drift check: no issue opened, the
	// open one (none here) looked for to close.
	succeeded(t, deploy("prod", "up", ""))
	r = tr.job("drift.yml", "drift", "schedule", map[string]string{})
	succeeded(t, r)
	if r.outputs["preview"]["result"] != "clean" {
		t.Errorf("drift on an unchanged prod: %v\n%s", r.outputs["preview"], r)
	}
	if b, _ := os.ReadFile(tr.ghLog); !strings.Contains(string(b), "issue list") || strings.Contains(string(b), "issue create") {
		t.Errorf("a clean drift check ran gh: %s", b)
	}

	// destroy without the name typed stops before anything, and calls
	// nothing; with it, the stack goes.
	before := len(tr.a.Rec.Calls())
	r = deploy("dev", "destroy", "")
	if first := r.results[0]; first.code == 0 || !strings.Contains(first.output, "destroy not confirmed") {
		t.Errorf("an unconfirmed destroy was not stopped:\n%s", r)
	}
	for _, res := range r.results[1:] {
		if !res.skipped {
			t.Errorf("step %q ran after the unconfirmed destroy", res.name)
		}
	}
	if n := len(tr.a.Rec.Calls()); n != before {
		t.Errorf("an unconfirmed destroy made %d AWS calls", n-before)
	}
	succeeded(t, deploy("dev", "destroy", "dev"))
	if sg, _ := tr.group("dev"); sg != "" {
		t.Errorf("dev's network is still there after destroy")
	}

	tr.a.Check(t)
	t.Logf("calls per role and job (principal, job, count, IAM actions):\n%s", tr.a.Summary(t))
}

// iamAllowed: may a token with subject assume a role with this trust policy?
func iamAllowed(trust backend.PolicyDocument, subject string) (bool, error) {
	return iampolicy.Allowed(trust, iampolicy.Request{Action: "sts:AssumeRoleWithWebIdentity", Ctx: map[string][]string{
		backend.GitHubIssuer + ":aud": {backend.GitHubAudience}, backend.GitHubIssuer + ":sub": {subject},
	}})
}
