package infra

// Tests of the AWS and GCP layer against the clouds' real rules, each
// naming the upstream fact it pins and where it is written down.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"microk8s-platform/infra/budget"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/vm"
	"microk8s-platform/internal/repo"
)

// pulumi-aws v6.83.4 ec2/eip.go: "EIP may require IGW to exist prior to
// association. Use `dependsOn` to set an explicit dependency on the IGW."
// The route-table association is what gives the subnet its default route:
// before it exists the address does not reach the VM, so the SSH steps
// wait for it too.
func TestEIPAndSSHWaitForTheInternetGatewayAndRoute(t *testing.T) {
	m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")))
	igw := urnOf(m, "aws:ec2/internetGateway:InternetGateway", "network")
	rta := urnOf(m, "aws:ec2/routeTableAssociation:RouteTableAssociation", "network")
	eip := m.One(t, "aws:ec2/eip:Eip", "vm")
	wait := m.One(t, "command:remote:Command", "microk8s-wait")
	for _, dep := range []string{igw, rta} {
		if !slices.Contains(eip.Dependencies, dep) {
			t.Errorf("the Elastic IP does not depend on %s (depends on %v)", dep, eip.Dependencies)
		}
		if !slices.Contains(wait.Dependencies, dep) {
			t.Errorf("the SSH wait does not depend on %s (depends on %v)", dep, wait.Dependencies)
		}
	}
}

// A persistent spot request outlives its instance: deleting the instance
// leaves the request open and EC2 launches another one outside the stack
// (hashicorp/terraform-provider-aws#38142, "Persistent type creates
// untracked resource"), and stop/hibernate are only allowed with a
// persistent request ("Persistent Spot Instance requests are only supported
// when the instance interruption behavior is either hibernate or stop",
// pulumi-aws v6.83.4 ec2/pulumiTypes.go InstanceInstanceMarketOptionsSpotOptions;
// the same text in terraform-provider-aws website/docs/r/instance.html.markdown,
// "Spot Options"). So: one-time + terminate, a root volume that goes with
// the instance, and the instance id in every install step's triggers so a
// re-created VM is installed again.
func TestSpotIsOneTimeAndLeavesNothingBehind(t *testing.T) {
	m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")))
	inst := m.One(t, "aws:ec2/instance:Instance", "vm")
	for path, want := range map[string]string{
		"instanceMarketOptions.marketType":                               "spot",
		"instanceMarketOptions.spotOptions.spotInstanceType":             "one-time",
		"instanceMarketOptions.spotOptions.instanceInterruptionBehavior": "terminate",
		"rootBlockDevice.deleteOnTermination":                            "true",
	} {
		if got := mt.Str(inst.Inputs, path); got != want {
			t.Errorf("instance %s = %q, want %q", path, got, want)
		}
	}
	if mt.Get(inst.Inputs, "instanceMarketOptions.spotOptions.validUntil").HasValue() {
		t.Error("validUntil is for persistent requests only")
	}
	for _, step := range []string{"microk8s-wait", "microk8s-install", "microk8s-addons", "microk8s-kubeconfig", "microk8s-apiaddress"} {
		c := m.One(t, "command:remote:Command", step)
		if !slices.Contains(mt.Strings(c.Inputs, "triggers"), "i-0abc") {
			t.Errorf("%s does not run again on a new instance: triggers %v lack its id", step, mt.Strings(c.Inputs, "triggers"))
		}
	}
	// prod is on-demand: no market options at all.
	mp, _ := run(t, "prod", userKeys(mt.StackFile(t, "prod")))
	if mp.One(t, "aws:ec2/instance:Instance", "vm").Inputs.HasValue("instanceMarketOptions") {
		t.Error("prod is spot")
	}
}

// The zone: "When Local Zones are enabled in a region, by default the API
// and this data source include both Local Zones and Availability Zones";
// only Availability Zones with the opt-in-status filter
// "opt-in-not-required" (pulumi-aws v6.83.4 getAvailabilityZones.go). And
// not every zone offers every instance type: DescribeInstanceTypeOfferings
// with locationType "availability-zone" says which do (pulumi-aws v6.83.4
// ec2/getInstanceTypeOfferings.go; its default, "region", names no zone).
func TestZoneNeedsNoOptInAndOffersTheInstanceType(t *testing.T) {
	c := userKeys(mt.StackFile(t, "dev"))
	zone := func(opts ...func(*mt.Mocks)) (string, *mt.Mocks, error) {
		m, err := mt.Run(t, "dev", c, Run, opts...)
		if err != nil {
			return "", m, err
		}
		return mt.Str(m.One(t, "aws:ec2/subnet:Subnet", "network").Inputs, "availabilityZone"), m, nil
	}

	// The account opted in to a Local Zone whose name sorts first.
	got, m, err := zone()
	if err != nil || got != "us-east-1a" {
		t.Fatalf("zone = %q, %v; want us-east-1a (not the Local Zone us-east-1-bos-1a)", got, err)
	}
	for _, call := range m.Calls {
		if call.Token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings" &&
			(mt.Str(call.Args, "locationType") != "availability-zone" || mt.Strings(call.Args, "filters[0].values")[0] != "t3.large") {
			t.Errorf("offerings lookup: %v", call.Args)
		}
	}

	// us-east-1a does not offer the type: the next zone that does.
	got, _, err = zone(func(m *mt.Mocks) {
		m.Offered = map[string][]string{"t3.large": {"us-east-1-bos-1a", "us-east-1c", "us-east-1b"}}
	})
	if err != nil || got != "us-east-1b" {
		t.Errorf("zone = %q, %v; want us-east-1b, the first zone offering t3.large", got, err)
	}

	// Offered only in the Local Zone: refused, naming the type.
	_, _, err = zone(func(m *mt.Mocks) { m.Offered = map[string][]string{"t3.large": {"us-east-1-bos-1a"}} })
	if err == nil || !strings.Contains(err.Error(), "t3.large") || !strings.Contains(err.Error(), "instanceType") {
		t.Errorf("no zone offers the type: err = %v", err)
	}
}

// IPv6 admin networks: a security-group rule takes its source in cidrIpv4
// ("The source IPv4 CIDR range") or cidrIpv6 ("The source IPv6 CIDR
// range", pulumi-aws v6.83.4 vpc/securityGroupIngressRule.go); and on GCP
// "A firewall rule can contain either IPv4 or IPv6 ranges, but not both"
// (cloud.google.com/firewall/docs/using-firewalls, "Create VPC firewall
// rules").
func TestIPv6AdminCidrsGetRulesOfTheirOwnFamily(t *testing.T) {
	const v6 = "2001:db8:1234::/48"
	m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"adminCidrs": `["` + adminCIDR + `","` + v6 + `"]`}))
	var got []string
	for _, r := range m.ByType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
		v4, v6 := mt.Str(r.Inputs, "cidrIpv4"), mt.Str(r.Inputs, "cidrIpv6")
		if (v4 == "") == (v6 == "") {
			t.Errorf("rule %s: cidrIpv4=%q cidrIpv6=%q, want exactly one", r.Name, v4, v6)
		}
		if strings.Contains(v4, ":") || (v6 != "" && !strings.Contains(v6, ":")) {
			t.Errorf("rule %s puts an address in the other family's field: %q / %q", r.Name, v4, v6)
		}
		if v6 != "" {
			got = append(got, mt.Str(r.Inputs, "fromPort")+" "+v6)
		}
	}
	slices.Sort(got)
	if want := []string{"16443 " + v6, "22 " + v6}; !slices.Equal(got, want) {
		t.Errorf("IPv6 rules %v, want %v", got, want)
	}

	gcp := func(cidrs string) map[string][]string {
		m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")).Set(map[string]string{
			"target": "gcp", "aws:region": "", "gcp:project": "acme-platform", "gcp:region": "europe-west1", "adminCidrs": cidrs,
		}))
		out := map[string][]string{}
		for _, f := range m.ByType("gcp:compute/firewall:Firewall") {
			out[f.Name] = mt.Strings(f.Inputs, "sourceRanges")
		}
		return out
	}
	fw := gcp(`["` + adminCIDR + `","` + v6 + `"]`)
	if !slices.Equal(fw["network-admin"], []string{adminCIDR}) || !slices.Equal(fw["network-admin-ipv6"], []string{v6}) {
		t.Errorf("GCP admin rules: %v", fw)
	}
	// IPv6 only: no IPv4 admin rule, which without sources would not be
	// accepted ("For INGRESS traffic, one of sourceRanges, sourceTags or
	// sourceServiceAccounts is required", pulumi-gcp v9.6.0 compute/firewall.go).
	fw = gcp(`["` + v6 + `"]`)
	if _, has := fw["network-admin"]; has || !slices.Equal(fw["network-admin-ipv6"], []string{v6}) {
		t.Errorf("GCP admin rules for an IPv6-only list: %v", fw)
	}
}

// Budgets: a TagKeyValue cost filter on "user:<key>$<value>" counts only
// resources carrying that user-defined tag (pulumi-aws v6.83.4
// budgets/budget.go, "Create a cost filter using resource tags").
func TestBudgetCountsOnlyItsStack(t *testing.T) {
	for _, stack := range []string{"dev", "prod"} {
		m, _ := run(t, stack, userKeys(mt.StackFile(t, stack)))
		b := m.One(t, "aws:budgets/budget:Budget", "budget")
		filters := mt.Get(b.Inputs, "costFilters").ArrayValue()
		if len(filters) != 1 {
			t.Fatalf("%s: budget cost filters %v, want one on the stack tag", stack, filters)
		}
		f := filters[0].ObjectValue()
		if mt.Str(f, "name") != "TagKeyValue" || !slices.Equal(mt.Strings(f, "values"), []string{"user:stack$" + stack}) {
			t.Errorf("%s: cost filter %v", stack, f)
		}
		// Every resource the filter is meant to count carries the tag.
		for _, r := range m.Resources {
			if strings.HasPrefix(r.Type, "aws:ec2/") && r.Inputs.HasValue("tags") && mt.StringMap(r.Inputs, "tags")[budget.StackTagKey] != stack {
				t.Errorf("%s %s lacks tag %s=%s", r.Type, r.Name, budget.StackTagKey, stack)
			}
		}
	}
}

// Each committed AWS stack's estimated VM cost (infra/vm/cost.go) sits
// below its budget's highest ACTUAL alert, so an ordinary month does not
// fire it and the forecast alert at 100 % stays quiet too.
func TestCommittedStacksFitTheirBudgets(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "Pulumi.*.yaml"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Config map[string]string }
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		get := func(k string) string { return doc.Config[mt.Project+":"+k] }
		if get("target") != TargetAWS {
			continue
		}
		n++
		d := Defaults()
		typ, disk, data, limit := d.InstanceType, d.RootVolumeGiB, d.DataVolumeGiB, d.BudgetMonthlyUSD
		if v := get("instanceType"); v != "" {
			typ = v
		}
		if v := get("rootVolumeGiB"); v != "" {
			disk, _ = strconv.Atoi(v)
		}
		if v := get("dataVolumeGiB"); v != "" {
			data, _ = strconv.Atoi(v)
		}
		disk += data // the data disk is billed like the root disk (gp3)
		if v := get("budgetMonthlyUsd"); v != "" {
			limit, _ = strconv.ParseFloat(v, 64)
		}
		cost, ok := vm.MonthlyCost("aws", typ, get("spot") == "true", disk)
		if !ok {
			t.Errorf("%s: no price for %s in infra/vm/cost.go", filepath.Base(f), typ)
			continue
		}
		if err := budget.CheckEstimate(cost, limit); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	if n < 2 {
		t.Errorf("checked %d AWS stack files, want dev and prod at least", n)
	}
	// The check itself: 75 % is the highest ACTUAL alert.
	if budget.CheckEstimate(30, 40) != nil || budget.CheckEstimate(30.01, 40) == nil || budget.CheckEstimate(27.31, 15) == nil {
		t.Error("CheckEstimate does not draw the line at the 75 % alert")
	}
}

// GCP zones are not always "<region>-a": europe-west1 has b, c and d, and
// us-east1 b, c and d (cloud.google.com/compute/docs/regions-zones,
// "Available regions and zones").
func TestGCPZoneIsARealZoneOfTheRegion(t *testing.T) {
	gcp := func(kv map[string]string) mt.Config {
		base := map[string]string{"target": "gcp", "aws:region": "", "gcp:project": "acme-platform"}
		for k, v := range kv {
			base[k] = v
		}
		return userKeys(mt.StackFile(t, "dev")).Set(base)
	}
	for region, want := range map[string]string{"europe-west1": "europe-west1-b", "us-east1": "us-east1-b", "us-central1": "us-central1-a"} {
		m, _ := run(t, "dev", gcp(map[string]string{"gcp:region": region}))
		if got := mt.Str(m.One(t, "gcp:compute/instance:Instance", "vm").Inputs, "zone"); got != want {
			t.Errorf("region %s: zone %q, want %q", region, got, want)
		}
	}
	if m, _ := run(t, "dev", gcp(map[string]string{"gcp:region": "europe-west1", "gcp:zone": "europe-west1-d"})); mt.Str(m.One(t, "gcp:compute/instance:Instance", "vm").Inputs, "zone") != "europe-west1-d" {
		t.Error("gcp:zone is not used")
	}
	for _, bad := range []struct{ region, zone, says string }{
		{"europe-west1", "europe-west1-a", "europe-west1-b, europe-west1-c, europe-west1-d"},
		{"us-east1", "us-central1-a", "us-east1-b"},
		{"mars-north1", "", "required for region mars-north1"},
	} {
		_, err := mt.Run(t, "dev", gcp(map[string]string{"gcp:region": bad.region, "gcp:zone": bad.zone}), Run)
		if err == nil || !strings.Contains(err.Error(), "gcp:zone") || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("region %s zone %q: err = %v", bad.region, bad.zone, err)
		}
	}
	if _, err := mt.Run(t, "dev", gcp(map[string]string{"gcp:region": "mars-north1", "gcp:zone": "mars-north1-x"}), Run); err != nil {
		t.Errorf("a region outside the table with gcp:zone set: %v", err)
	}
}
