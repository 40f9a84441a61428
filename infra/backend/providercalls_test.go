package backend

// The provider, for real: terraform with terraform-provider-aws 5.100.0
// (the code pulumi-aws v6.83.4 bridges, preinstalled in the machine's
// plugin folder) applies the AWS resources and data sources the program
// declares for dev and prod, generated from the program's own graph under
// mocks (infra/internal/tfcalls), against moto: create, refresh, a change
// that updates in place (a bigger instance type, another admin CIDR, a new
// budget, one more tag on everything), a replaced VM, destroy. Every API
// call the provider makes is read from terraform's JSON log, with the
// resource type and provider RPC it belongs to and the ids in its
// parameters, and checked against the needs table: a call the table lacks
// for that resource type fails the test, and so does a resource the call
// names that the table's row does not authorise it on. A read-only role
// gets the table's read rows, so a call made while reading state
// (ReadResource, ReadDataSource) must be a read row.
//
// moto has no DLM: internal/dlmemu answers the snapshot policy's calls in
// front of it, so the provider's own DLM calls are recorded too, and the
// test checks that the lifecycle leaves exactly one policy after create,
// of the stack's shape, and none after destroy. Where moto cannot emulate
// a call it answers with an error; those calls are listed in the log, and
// their rows keep their upstream source.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"microk8s-platform/infra"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/internal/tfcalls"
	"microk8s-platform/infra/vm"
	"microk8s-platform/internal/dlmemu"
	"microk8s-platform/internal/moto"
)

// pluginDir is where this machine image keeps terraform-provider-aws
// (TF_PLUGIN_DIR overrides).
func pluginDir(t *testing.T) string {
	dir := os.Getenv("TF_PLUGIN_DIR")
	if dir == "" {
		dir = "/opt/tf-plugins"
	}
	if _, err := exec.LookPath("terraform"); err != nil {
		t.Skip("terraform is not installed: the provider tier needs terraform and terraform-provider-aws " + tfcalls.ProviderVersion + " (TF_PLUGIN_DIR, default /opt/tf-plugins)")
	}
	p := filepath.Join(dir, "registry.terraform.io/hashicorp/aws", tfcalls.ProviderVersion)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("terraform-provider-aws %s is not in %s: the provider tier needs it (TF_PLUGIN_DIR)", tfcalls.ProviderVersion, dir)
	}
	return dir
}

// ubuntuImages is what moto's EC2 knows as images: one Canonical Ubuntu
// 24.04 image per architecture, named as Canonical names them, so the
// program's own image lookup (its filters, owner and most_recent) finds it.
func ubuntuImages(t *testing.T) string {
	var imgs []map[string]any
	for i, arch := range []string{"amd64", "arm64"} {
		a := map[string]string{"amd64": "x86_64", "arm64": "arm64"}[arch]
		imgs = append(imgs, map[string]any{
			"ami_id": fmt.Sprintf("ami-0ubuntu%08d", i), "state": "available", "public": true,
			"owner_id": CanonicalAccount, "image_location": "amazon/ubuntu",
			"name":         "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-" + arch + "-server-20251101",
			"architecture": a, "virtualization_type": "hvm", "root_device_type": "ebs",
			"root_device_name": "/dev/sda1", "sriov": "simple", "hypervisor": "xen",
			"description": "Canonical, Ubuntu, 24.04, " + arch + " noble image", "platform": nil,
			"creation_date": "2025-11-01T00:00:00.000Z",
		})
	}
	p := filepath.Join(t.TempDir(), "amis.json")
	b, _ := json.Marshal(imgs)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// phase is one terraform run of the lifecycle.
type phase struct {
	name string
	// change returns the stack configuration for this phase (nil: the
	// previous one) and edits the generated configuration.
	config func(mt.Config) mt.Config
	edit   func(doc map[string]any)
	args   []string
}

// changed is the stack's configuration after an ordinary change: a bigger
// instance type, another admin network, a bigger budget.
func changed(st string) func(mt.Config) mt.Config {
	return func(c mt.Config) mt.Config {
		return c.Set(map[string]string{
			"instanceType": map[string]string{"dev": "t3.xlarge", "prod": "t3.2xlarge"}[st],
			"adminCidrs":   `["198.51.100.0/25"]`, "budgetMonthlyUsd": "400",
			"snapshotRetentionDays": "14",
		})
	}
}

// retag adds one tag to every resource that has tags: what a new program
// version changing the ownership tags would do.
func retag(doc map[string]any) {
	for _, byName := range doc["resource"].(map[string]any) {
		for _, body := range byName.(map[string]any) {
			b := body.(map[string]any)
			for _, k := range []string{"tags", "volume_tags"} {
				if tags, ok := b[k].(map[string]any); ok {
					tags["cost-center"] = "platform"
				}
			}
		}
	}
}

var lifecycle = []phase{
	{name: "create", args: []string{"apply", "-auto-approve", "-input=false"}},
	{name: "refresh", args: []string{"apply", "-refresh-only", "-auto-approve", "-input=false"}},
	{name: "update", config: nil /* set per stack */, edit: retag, args: []string{"apply", "-auto-approve", "-input=false"}},
	{name: "replace", edit: retag, args: []string{"apply", "-auto-approve", "-input=false", "-replace=aws_instance.vm"}},
	{name: "destroy", edit: retag, args: []string{"destroy", "-auto-approve", "-input=false"}},
}

// phaseConfigs renders stack st's terraform configuration for each phase
// of the lifecycle (the program under mocks, with the phase's stack
// configuration), pointed at the emulator at url.
func phaseConfigs(t *testing.T, st, url string) [][]byte {
	t.Helper()
	cfg := mt.StackFile(t, st).Set(map[string]string{
		"adminCidrs": `["198.51.100.0/24"]`, "sshPublicKey": testPubKey, "budgetEmails": `["ops@example.com"]`,
	}).Secret(map[string]string{
		"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
		"dbPassword":    "s3cret-db-pass", "alertWebhookUrl": "https://hooks.example.com/alerts",
	})
	var docs [][]byte
	for _, ph := range lifecycle {
		if ph.name == "update" {
			cfg = changed(st)(cfg)
		}
		m, err := mt.Run(t, st, cfg, infra.Run)
		if err != nil {
			t.Fatalf("%s: the program under mocks: %v", ph.name, err)
		}
		doc, _, err := tfcalls.Config(m, tfcalls.Provider{Endpoint: url, Region: cfg.Values["aws:region"], Services: []string{"ec2", "sts", "budgets", "dlm"}})
		if err != nil {
			t.Fatal(err)
		}
		if ph.edit != nil {
			var d map[string]any
			_ = json.Unmarshal(doc, &d)
			ph.edit(d)
			doc, _ = json.MarshalIndent(d, "", "  ")
		}
		docs = append(docs, doc)
	}
	return docs
}

// providerRun applies the lifecycle (docs, one per phase) and returns
// every call the provider made. The budget is a terraform root of its
// own: moto's Budgets answers DescribeSubscribersForNotification with a
// 500, so its create fails after the calls before it were made; the EC2
// resources go on.
func providerRun(t *testing.T, plugins string, docs [][]byte, after func(phase string)) []tfcalls.Call {
	t.Helper()
	// Credentials for moto, which accepts any; nothing of the machine's.
	env := []string{"AWS_ACCESS_KEY_ID=provider", "AWS_SECRET_ACCESS_KEY=emulated", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true"}
	ec2Root := tfcalls.Runner{Dir: t.TempDir(), PluginDir: plugins, Env: env}
	budgetRoot := tfcalls.Runner{Dir: t.TempDir(), PluginDir: plugins, Env: env}
	var all []tfcalls.Call
	for i, ph := range lifecycle {
		ec2Doc, budgetDoc, err := tfcalls.Split(docs[i], "aws_budgets_budget")
		if err != nil {
			t.Fatal(err)
		}
		for _, root := range []struct {
			r       tfcalls.Runner
			doc     []byte
			mayFail bool
			name    string
		}{{ec2Root, ec2Doc, false, "ec2"}, {budgetRoot, budgetDoc, true, "budget"}} {
			if ph.name == "replace" && root.name == "budget" {
				continue // no VM there
			}
			if err := root.r.Write(root.doc); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if err := root.r.Init(); err != nil {
					t.Fatal(err)
				}
			}
			calls, out, err := root.r.Run(ph.name, ph.args...)
			if err != nil && !root.mayFail {
				t.Fatalf("%s: %v\n%s", ph.name, err, out)
			}
			all = append(all, calls...)
		}
		after(ph.name)
	}
	return all
}

// idTypes are the EC2 resource types a request's parameters name, by the
// id prefixes EC2 gives them.
var idTypes = []struct {
	re  *regexp.Regexp
	typ string
}{
	{regexp.MustCompile(`^vpc-[0-9a-f]+$`), "vpc"},
	{regexp.MustCompile(`^subnet-[0-9a-f]+$`), "subnet"},
	{regexp.MustCompile(`^sg-[0-9a-f]+$`), "security-group"},
	{regexp.MustCompile(`^sgr-[0-9a-f]+$`), "security-group-rule"},
	{regexp.MustCompile(`^igw-[0-9a-f]+$`), "internet-gateway"},
	{regexp.MustCompile(`^rtb-[0-9a-f]+$`), "route-table"},
	{regexp.MustCompile(`^i-[0-9a-f]+$`), "instance"},
	{regexp.MustCompile(`^vol-[0-9a-f]+$`), "volume"},
	{regexp.MustCompile(`^eipalloc-[0-9a-f]+$`), "elastic-ip"},
	{regexp.MustCompile(`^key-[0-9a-f]+$`), "key-pair"},
	{regexp.MustCompile(`^eni-[0-9a-f]+$`), "network-interface"},
	{regexp.MustCompile(`^sir-[0-9a-z]+$`), "spot-instances-request"},
	{regexp.MustCompile(`^ami-[0-9a-z]+$`), "image"},
}

// notAuthorised are parameters that name a resource IAM does not
// authorise the call against (Service Authorization Reference, Amazon EC2:
// the action's resource types do not include it).
var notAuthorised = map[string][]string{
	"ec2:CreateRoute": {"GatewayId"}, // resource types: route-table only
}

// paramTypes are parameters whose id is authorised as a type its prefix
// does not say: the AMI data source passes the image's id as
// GetInstanceUefiData's InstanceId, an instance ARN to IAM.
var paramTypes = map[string]map[string]string{
	"ec2:GetInstanceUefiData": {"InstanceId": "instance"},
}

// touched are the resource types c's parameters name.
func touched(c tfcalls.Call, action string) []string {
	var out []string
	for k, vs := range c.Params {
		field := regexp.MustCompile(`\.[0-9]+$`).ReplaceAllString(k, "")
		if slices.Contains(notAuthorised[action], field) {
			continue
		}
		if typ, ok := paramTypes[action][field]; ok {
			if !slices.Contains(out, typ) {
				out = append(out, typ)
			}
			continue
		}
		for _, v := range vs {
			for _, it := range idTypes {
				if it.re.MatchString(v) && !slices.Contains(out, it.typ) {
					out = append(out, it.typ)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// iamAction is the IAM action a recorded API call is authorised as:
// EC2's are ec2:<operation>; Budgets' go through two (Service
// Authorization Reference, AWS Budget Service: CreateBudget, UpdateBudget,
// DeleteBudget and the notification and subscriber calls are
// budgets:ModifyBudget; the Describe calls budgets:ViewBudget).
func iamAction(c tfcalls.Call) string {
	switch c.Service {
	case "EC2":
		return "ec2:" + c.Method
	case "Budgets":
		switch {
		case strings.HasPrefix(c.Method, "Describe") && c.Method != "DescribeBudgetActionsForBudget":
			return "budgets:ViewBudget"
		case strings.HasPrefix(c.Method, "Create"), strings.HasPrefix(c.Method, "Update"), strings.HasPrefix(c.Method, "Delete"):
			return "budgets:ModifyBudget"
		}
		return "budgets:" + c.Method
	}
	return strings.ToLower(c.Service) + ":" + c.Method
}

// rowsFor are the table's calls for a terraform type.
func rowsFor(tfType string) ([]call, bool) {
	tok, ok := tfcalls.Token(tfType)
	if !ok {
		return nil, false
	}
	if calls, ok := needs[tok]; ok {
		if tok == "aws:ec2/instance:Instance" {
			calls = append(slices.Clone(calls), spotNeeds...)
		}
		return calls, true
	}
	calls, ok := invokeNeeds[tok]
	return calls, ok
}

// checkAgainstNeeds fails t for every recorded call the needs table does
// not hold for its resource type, and returns the calls moto answered with
// an error.
func checkAgainstNeeds(t *testing.T, st string, calls []tfcalls.Call) (failed []tfcalls.Call) {
	t.Helper()
	missing := map[string]bool{}
	for _, c := range calls {
		if c.Status >= 400 {
			failed = append(failed, c)
		}
		if c.Service == "STS" && c.Method == "GetCallerIdentity" {
			continue // needs no permission (AWS STS API Reference)
		}
		action := iamAction(c)
		rows, ok := rowsFor(c.Resource)
		if !ok {
			t.Errorf("%s: %s calls %s, and the table knows no such resource type", st, c.Resource, action)
			continue
		}
		var match []call
		for _, r := range rows {
			if r.action == action && (!c.Read() || r.op == "read") {
				match = append(match, r)
			}
		}
		what := fmt.Sprintf("%s %s: %s (%s during %s)", st, c.Resource, action, c.RPC, c.Phase)
		if len(match) == 0 {
			op := "any"
			if c.Read() {
				op = "read"
			}
			if !missing[what] {
				t.Errorf("%s: the needs table has no %s row for it", what, op)
			}
			missing[what] = true
			continue
		}
		if match[0].on[0].kind == anyRes {
			continue
		}
		var on []string
		for _, r := range match {
			for _, tc := range r.on {
				on = append(on, tc.typ)
			}
		}
		for _, typ := range touched(c, action) {
			if !slices.Contains(on, typ) && !missing[what+typ] {
				missing[what+typ] = true
				t.Errorf("%s names a %s (%s), which the table's row does not authorise it on (%v)", what, typ, c.Body, on)
			}
		}
	}
	return failed
}

// checkSnapshotPolicies: what the provider left in DLM after a phase. One
// policy while the stack exists, run as the bootstrap's role, targeting the
// stack's data tag, keeping snapshots as configured (14 days after the
// update); none after destroy.
func checkSnapshotPolicies(t *testing.T, st, phase string, pols []dlmemu.Policy) {
	t.Helper()
	if phase == "destroy" {
		if len(pols) != 0 {
			t.Errorf("%s: %d snapshot policies left after destroy", st, len(pols))
		}
		return
	}
	if len(pols) != 1 {
		t.Errorf("%s %s: %d snapshot policies, want 1", st, phase, len(pols))
		return
	}
	p := pols[0]
	days := map[string]int{"dev": 7, "prod": 30}[st]
	if phase != "create" && phase != "refresh" {
		days = 14
	}
	var d struct {
		ResourceTypes []string
		TargetTags    []struct{ Key, Value string }
		Schedules     []struct {
			Name       string
			CopyTags   bool
			CreateRule struct {
				Interval     int
				IntervalUnit string
				Times        []string
			}
			RetainRule struct {
				Interval     int
				IntervalUnit string
				Count        int
			}
		}
	}
	if err := json.Unmarshal(p.PolicyDetails, &d); err != nil {
		t.Fatalf("%s: policy details %s: %v", st, p.PolicyDetails, err)
	}
	ok := p.State == "ENABLED" && p.ExecutionRoleArn == vm.SnapshotRoleARN(mt.Account, Platform) &&
		slices.Equal(d.ResourceTypes, []string{"VOLUME"}) &&
		len(d.TargetTags) == 1 && d.TargetTags[0].Key == vm.DataTag && d.TargetTags[0].Value == Platform+"-"+st+"-data" &&
		len(d.Schedules) == 1 && d.Schedules[0].CopyTags && d.Schedules[0].Name == vm.DLMScheduleName &&
		d.Schedules[0].CreateRule.Interval == 24 && slices.Equal(d.Schedules[0].CreateRule.Times, []string{vm.SnapshotStartUTC}) &&
		d.Schedules[0].RetainRule.Interval == days && d.Schedules[0].RetainRule.IntervalUnit == "DAYS" && d.Schedules[0].RetainRule.Count == 0 &&
		p.Tags["stack"] == st
	if !ok {
		t.Errorf("%s %s: the snapshot policy the provider made: %+v\n%s", st, phase, p, p.PolicyDetails)
	}
}

func TestProviderCallsAreInTheNeedsTable(t *testing.T) {
	plugins := pluginDir(t)
	images := ubuntuImages(t)
	for _, st := range stacks {
		// Rendered first (the mocks set the test's environment), then the
		// two stacks' lifecycles run side by side, each on its own moto.
		snapshots := dlmemu.New(mt.Account, testRegion)
		url, stop, err := dlmemu.Front(snapshots, moto.Server(t, moto.Env("MOTO_AMIS_PATH", images)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = stop() })
		docs := phaseConfigs(t, st, url)
		t.Run(st, func(t *testing.T) {
			t.Parallel()
			calls := providerRun(t, plugins, docs, func(phase string) {
				checkSnapshotPolicies(t, st, phase, snapshots.Policies())
			})
			failed := checkAgainstNeeds(t, st, calls)
			counts := map[string]int{}
			for _, c := range calls {
				counts[c.Phase]++
			}
			t.Logf("%s: %d provider calls (%v)", st, len(calls), counts)
			seen := map[string]bool{}
			for _, c := range calls {
				if k := c.Phase + " " + c.Service + ":" + c.Method + " (" + c.RPC + ")"; c.Service == "DLM" && !seen[k] {
					seen[k] = true
					t.Logf("%s: %s", st, k)
				}
			}
			for _, c := range failed {
				t.Logf("moto answered an error (not emulated): %v", c)
			}
		})
	}
}
