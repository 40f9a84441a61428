package infra

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/budget"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/vm"
	"microk8s-platform/scripts/microk8s"
)

const (
	adminCIDR = "198.51.100.0/24"
	pubKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example.com"
	privKey   = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	dbPass    = "s3cret-db-pass"
)

// userKeys are the keys a user sets once per stack (README), on top of the
// committed stack file.
func userKeys(c mt.Config) mt.Config {
	return c.Set(map[string]string{
		"adminCidrs":   `["` + adminCIDR + `"]`,
		"sshPublicKey": pubKey,
		"budgetEmails": `["ops@example.com"]`,
	}).Secret(map[string]string{"sshPrivateKey": privKey, "dbPassword": dbPass, "alertWebhookUrl": alertHook})
}

// alertHook is where the user's stacks send alerts (a secret).
const alertHook = "https://hooks.example.com/services/T0/B0/s3cret"

// run runs the whole program for stack with config c and returns the mocks
// and the platform's outputs.
func run(t *testing.T, stack string, c mt.Config) (*mt.Mocks, *Outputs) {
	t.Helper()
	var out *Outputs
	m, err := mt.Run(t, stack, c, func(ctx *pulumi.Context) error {
		cfg, err := Load(ctx)
		if err != nil {
			return err
		}
		out, err = Platform(ctx, cfg)
		return err
	})
	if err != nil {
		t.Fatalf("program failed: %v", err)
	}
	return m, out
}

func awaitString(t *testing.T, o pulumi.StringOutput) (string, bool) {
	t.Helper()
	v, secret, err := mt.Await(o)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.(string)
	return s, secret
}

func TestDevStackOnAWS(t *testing.T) {
	m, out := run(t, "dev", userKeys(mt.StackFile(t, "dev")))

	vpc := m.One(t, "aws:ec2/vpc:Vpc", "network")
	subnet := m.One(t, "aws:ec2/subnet:Subnet", "network")
	_, vnet, _ := net.ParseCIDR(mt.Str(vpc.Inputs, "cidrBlock"))
	sip, snet, err := net.ParseCIDR(mt.Str(subnet.Inputs, "cidrBlock"))
	if err != nil || !vnet.Contains(sip) {
		t.Fatalf("subnet %s not inside VPC %s", mt.Str(subnet.Inputs, "cidrBlock"), vnet)
	}
	if ones, _ := snet.Mask.Size(); ones != 24 {
		t.Fatalf("subnet is a /%d", ones)
	}
	if mt.Str(subnet.Inputs, "availabilityZone") != "us-east-1a" || mt.Str(subnet.Inputs, "mapPublicIpOnLaunch") != "false" {
		t.Errorf("subnet zone/public-ip: %v", subnet.Inputs)
	}
	rt := m.One(t, "aws:ec2/routeTable:RouteTable", "network")
	if mt.Str(rt.Inputs, "routes[0].cidrBlock") != "0.0.0.0/0" || mt.Str(rt.Inputs, "routes[0].gatewayId") != "network-id" {
		t.Errorf("default route: %v", rt.Inputs["routes"])
	}
	if a := m.One(t, "aws:ec2/routeTableAssociation:RouteTableAssociation", "network"); mt.Str(a.Inputs, "subnetId") != "subnet-0abc" {
		t.Errorf("route table not associated with the subnet")
	}

	// The exact security-group policy, as separate rule resources.
	sg := m.One(t, "aws:ec2/securityGroup:SecurityGroup", "network")
	if sg.Inputs.HasValue("ingress") || sg.Inputs.HasValue("egress") {
		t.Error("security group has inline rules; they must be separate resources")
	}
	var rules []string
	for _, r := range m.ByType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
		if mt.Str(r.Inputs, "securityGroupId") != "sg-0abc" {
			t.Errorf("rule %s on another group", r.Name)
		}
		rules = append(rules, mt.Str(r.Inputs, "ipProtocol")+"/"+mt.Str(r.Inputs, "fromPort")+"-"+mt.Str(r.Inputs, "toPort")+" from "+mt.Str(r.Inputs, "cidrIpv4")+mt.Str(r.Inputs, "cidrIpv6"))
	}
	slices.Sort(rules)
	want := []string{
		"tcp/16443-16443 from " + adminCIDR,
		"tcp/22-22 from " + adminCIDR,
		"tcp/443-443 from 0.0.0.0/0",
		"tcp/80-80 from 0.0.0.0/0",
	}
	if strings.Join(rules, "; ") != strings.Join(want, "; ") {
		t.Fatalf("ingress rules:\n  %s\nwant:\n  %s", strings.Join(rules, "\n  "), strings.Join(want, "\n  "))
	}
	eg := m.ByType("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
	if len(eg) != 1 || mt.Str(eg[0].Inputs, "ipProtocol") != "-1" || mt.Str(eg[0].Inputs, "cidrIpv4") != "0.0.0.0/0" {
		t.Fatalf("egress rules: %v", eg)
	}

	// The AMI: Canonical's, the pinned pattern.
	var ami *mt.Call
	for i, c := range m.Calls {
		if c.Token == "aws:ec2/getAmi:getAmi" {
			ami = &m.Calls[i]
		}
	}
	if ami == nil {
		t.Fatal("no AMI lookup")
	}
	if got := mt.Strings(ami.Args, "owners"); len(got) != 1 || got[0] != vm.CanonicalOwnerID {
		t.Errorf("AMI owners = %v", got)
	}
	if mt.Str(ami.Args, "filters[0].name") != "name" || mt.Strings(ami.Args, "filters[0].values")[0] != "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*" || mt.Str(ami.Args, "mostRecent") != "true" {
		t.Errorf("AMI filter = %v", ami.Args)
	}

	inst := m.One(t, "aws:ec2/instance:Instance", "vm")
	checks := map[string]string{
		"ami":                          mt.AMIID,
		"instanceType":                 "t3.large",
		"metadataOptions.httpTokens":   "required",
		"metadataOptions.httpEndpoint": "enabled",
		"metadataOptions.httpPutResponseHopLimit":                        "1",
		"rootBlockDevice.volumeType":                                     "gp3",
		"rootBlockDevice.encrypted":                                      "true",
		"rootBlockDevice.volumeSize":                                     "30",
		"instanceMarketOptions.marketType":                               "spot",
		"instanceMarketOptions.spotOptions.instanceInterruptionBehavior": "terminate",
		"subnetId": "subnet-0abc",
	}
	for path, want := range checks {
		if got := mt.Str(inst.Inputs, path); got != want {
			t.Errorf("instance %s = %q, want %q", path, got, want)
		}
	}
	if !slices.Contains(inst.IgnoreChanges, "ami") {
		t.Error("a new AMI would replace the VM: ami is not in ignoreChanges")
	}
	if eip := m.One(t, "aws:ec2/eip:Eip", "vm"); mt.Str(eip.Inputs, "domain") != "vpc" || mt.Str(eip.Inputs, "instance") != "i-0abc" {
		t.Errorf("EIP: %v", eip.Inputs)
	}
	if kp := m.One(t, "aws:ec2/keyPair:KeyPair", "vm"); mt.Str(kp.Inputs, "publicKey") != pubKey {
		t.Errorf("key pair public key: %q", mt.Str(kp.Inputs, "publicKey"))
	}

	assertCommandChain(t, m, mt.AWSPublicIP, mt.AWSPrivateIP,
		[]string{urnOf(m, "aws:ec2/instance:Instance", "vm"), urnOf(m, "aws:ec2/eip:Eip", "vm")})
	assertAWSTags(t, m, "dev")

	b := m.One(t, "aws:budgets/budget:Budget", "budget")
	if mt.Str(b.Inputs, "limitAmount") != "40.00" || mt.Str(b.Inputs, "timeUnit") != "MONTHLY" || mt.Str(b.Inputs, "budgetType") != "COST" {
		t.Errorf("budget: %v", b.Inputs)
	}
	notes := mt.Get(b.Inputs, "notifications").ArrayValue()
	if len(notes) != len(budget.Alerts) {
		t.Fatalf("%d budget notifications, want %d", len(notes), len(budget.Alerts))
	}
	var got []string
	for _, n := range notes {
		pm := n.ObjectValue()
		got = append(got, mt.Str(pm, "threshold")+"% "+mt.Str(pm, "notificationType")+" -> "+strings.Join(mt.Strings(pm, "subscriberEmailAddresses"), ","))
	}
	if strings.Join(got, "; ") != "25% ACTUAL -> ops@example.com; 50% ACTUAL -> ops@example.com; 75% ACTUAL -> ops@example.com; 100% FORECASTED -> ops@example.com" {
		t.Errorf("budget notifications: %v", got)
	}

	if kc, secret := awaitString(t, out.Kubeconfig); !secret || !strings.Contains(kc, "server: https://"+mt.AWSPublicIP+":16443") {
		t.Errorf("kubeconfig output secret=%v: %q", secret, kc)
	}
	if u, _ := awaitString(t, out.AppURL); u != "http://"+mt.AWSPublicIP+"/api/comment" {
		t.Errorf("appUrl = %q", u)
	}
	if s, _ := awaitString(t, out.SSHCommand); s != "ssh -p 22 ubuntu@"+mt.AWSPublicIP {
		t.Errorf("sshCommand = %q", s)
	}
	if want, _ := vm.MonthlyCost("aws", "t3.large", true, 30+20); out.MonthlyCostUSD != want || want <= 0 {
		t.Errorf("estimated cost = %v, want %v", out.MonthlyCostUSD, want)
	}
}

func TestProdStackIsOnDemandLargerAndReplicated(t *testing.T) {
	m, out := run(t, "prod", userKeys(mt.StackFile(t, "prod")))
	inst := m.One(t, "aws:ec2/instance:Instance", "vm")
	if inst.Inputs.HasValue("instanceMarketOptions") {
		t.Error("prod VM is spot")
	}
	if mt.Str(inst.Inputs, "instanceType") != "t3.xlarge" || mt.Str(inst.Inputs, "rootBlockDevice.volumeSize") != "50" {
		t.Errorf("prod size: %s, %s GiB", mt.Str(inst.Inputs, "instanceType"), mt.Str(inst.Inputs, "rootBlockDevice.volumeSize"))
	}
	dep := m.One(t, "kubernetes:apps/v1:Deployment", "comments")
	if mt.Str(dep.Inputs, "spec.replicas") != "2" {
		t.Errorf("prod replicas = %s", mt.Str(dep.Inputs, "spec.replicas"))
	}
	pdb := m.One(t, "kubernetes:policy/v1:PodDisruptionBudget", "comments")
	if mt.Str(pdb.Inputs, "spec.minAvailable") != "1" {
		t.Errorf("PDB minAvailable = %s", mt.Str(pdb.Inputs, "spec.minAvailable"))
	}
	if mt.Str(m.One(t, "aws:budgets/budget:Budget", "budget").Inputs, "limitAmount") != "180.00" {
		t.Error("prod budget")
	}
	if want, _ := vm.MonthlyCost("aws", "t3.xlarge", false, 50+40); out.MonthlyCostUSD != want {
		t.Errorf("cost = %v, want %v", out.MonthlyCostUSD, want)
	}
	assertAWSTags(t, m, "prod")
}

func TestGCPTarget(t *testing.T) {
	c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{
		"target": "gcp", "aws:region": "", "gcp:project": "acme-platform", "gcp:region": "europe-west1", "spot": "true",
	})
	m, out := run(t, "dev", c)
	if len(m.ByType("aws:ec2/vpc:Vpc")) != 0 || len(m.ByType("aws:budgets/budget:Budget")) != 0 {
		t.Fatal("AWS resources on target gcp")
	}
	netw := m.One(t, "gcp:compute/network:Network", "network")
	if mt.Str(netw.Inputs, "autoCreateSubnetworks") != "false" {
		t.Error("network is not custom-mode")
	}
	sub := m.One(t, "gcp:compute/subnetwork:Subnetwork", "network")
	if mt.Str(sub.Inputs, "ipCidrRange") != "10.0.1.0/24" || mt.Str(sub.Inputs, "region") != "europe-west1" {
		t.Errorf("subnetwork: %v", sub.Inputs)
	}
	fw := map[string]string{}
	for _, f := range m.ByType("gcp:compute/firewall:Firewall") {
		var ports []string
		for _, a := range mt.Get(f.Inputs, "allows").ArrayValue() {
			ports = append(ports, mt.Str(a.ObjectValue(), "protocol")+":"+strings.Join(mt.Strings(a.ObjectValue(), "ports"), ","))
		}
		ranges := append(mt.Strings(f.Inputs, "sourceRanges"), mt.Strings(f.Inputs, "destinationRanges")...)
		fw[f.Name] = mt.Str(f.Inputs, "direction") + " " + strings.Join(ports, " ") + " " + strings.Join(ranges, ",") + " -> " + strings.Join(mt.Strings(f.Inputs, "targetTags"), ",")
	}
	tag := "microk8s-platform-dev-vm"
	wantFW := map[string]string{
		"network-admin":  "INGRESS tcp:22,16443 " + adminCIDR + " -> " + tag,
		"network-public": "INGRESS tcp:80,443 0.0.0.0/0 -> " + tag,
		"network-egress": "EGRESS all: 0.0.0.0/0 -> " + tag,
	}
	for k, v := range wantFW {
		if fw[k] != v {
			t.Errorf("firewall %s = %q, want %q", k, fw[k], v)
		}
	}
	if len(fw) != len(wantFW) {
		t.Errorf("firewalls: %v", fw)
	}
	inst := m.One(t, "gcp:compute/instance:Instance", "vm")
	for path, want := range map[string]string{
		"bootDisk.initializeParams.image":                  vm.GCPImages["24.04"],
		"bootDisk.initializeParams.size":                   "30",
		"shieldedInstanceConfig.enableSecureBoot":          "true",
		"shieldedInstanceConfig.enableVtpm":                "true",
		"shieldedInstanceConfig.enableIntegrityMonitoring": "true",
		"metadata.ssh-keys":                                "ubuntu:" + pubKey,
		"metadata.block-project-ssh-keys":                  "true",
		"networkInterfaces[0].accessConfigs[0].natIp":      mt.GCPPublicIP,
		"scheduling.provisioningModel":                     "SPOT",
		"scheduling.instanceTerminationAction":             "STOP",
		"zone":                                             "europe-west1-b",
		"labels.managed-by":                                "pulumi",
	} {
		if got := mt.Str(inst.Inputs, path); got != want {
			t.Errorf("instance %s = %q, want %q", path, got, want)
		}
	}
	if !slices.Contains(mt.Strings(inst.Inputs, "tags"), tag) {
		t.Errorf("instance tags %v lack %s", mt.Strings(inst.Inputs, "tags"), tag)
	}
	assertCommandChain(t, m, mt.GCPPublicIP, mt.GCPPrivateIP,
		[]string{urnOf(m, "gcp:compute/instance:Instance", "vm"), urnOf(m, "gcp:compute/address:Address", "vm")})
	if u, _ := awaitString(t, out.AppURL); u != "http://"+mt.GCPPublicIP+"/api/comment" {
		t.Errorf("appUrl = %q", u)
	}
}

func TestSSHTargetUsesTheGivenHost(t *testing.T) {
	c := mt.StackFile(t, "dev").Set(map[string]string{
		"target": "ssh", "sshHost": "192.0.2.50", "sshPrivateIp": "10.10.0.5", "sshUser": "vagrant", "sshPort": "2222",
	}).Secret(map[string]string{"sshPrivateKey": privKey, "dbPassword": dbPass, "alertWebhookUrl": alertHook})
	m, out := run(t, "dev", c)
	for _, r := range m.Resources {
		if strings.HasPrefix(r.Type, "aws:") || strings.HasPrefix(r.Type, "gcp:") {
			t.Fatalf("cloud resource %s on target ssh", r.Type)
		}
	}
	assertCommandChain(t, m, "192.0.2.50", "10.10.0.5", nil)
	wait := m.One(t, "command:remote:Command", "microk8s-wait")
	if mt.Str(wait.Inputs, "connection.user") != "vagrant" || mt.Str(wait.Inputs, "connection.port") != "2222" {
		t.Errorf("connection: %v", wait.Inputs["connection"])
	}
	if s, _ := awaitString(t, out.SSHCommand); s != "ssh -p 2222 vagrant@192.0.2.50" {
		t.Errorf("sshCommand = %q", s)
	}
}

// assertCommandChain checks the MicroK8s install chain: order, inputs,
// secrets, and that nothing runs before the machine and its address exist.
func assertCommandChain(t *testing.T, m *mt.Mocks, publicIP, privateIP string, machine []string) {
	t.Helper()
	steps := []struct{ name, script string }{
		{"microk8s-wait", "wait-for-host.sh"},
		{"microk8s-data", "mount-data-disk.sh"}, // on a cloud VM: its data disk (datadisk_test.go)
		{"microk8s-install", "install-microk8s.sh"},
		{"microk8s-addons", "enable-addons.sh"},
		{"microk8s-kubeconfig", "kubeconfig.sh"},
		{"microk8s-apiaddress", "api-address.sh"}, // Kong's API rule (kong_apirule_test.go)
	}
	// The cluster's own steps; the image side-load adds its import
	// (infra/appimage_test.go checks that one).
	var clusterSteps []string
	hasData := false
	for _, c := range m.ByType("command:remote:Command") {
		if strings.HasPrefix(c.Name, "microk8s-") {
			clusterSteps = append(clusterSteps, c.Name)
			hasData = hasData || c.Name == "microk8s-data"
		}
	}
	if !hasData {
		steps = slices.DeleteFunc(steps, func(s struct{ name, script string }) bool { return s.name == "microk8s-data" })
	}
	if len(clusterSteps) != len(steps) {
		t.Fatalf("cluster remote commands %v, want %d", clusterSteps, len(steps))
	}
	prev := machine
	for _, s := range steps {
		c := m.One(t, "command:remote:Command", s.name)
		for _, dep := range prev {
			if !slices.Contains(c.Dependencies, dep) {
				t.Errorf("%s does not wait for %s (depends on %v)", s.name, dep, c.Dependencies)
			}
		}
		prev = []string{c.URN}
		if mt.Str(c.Inputs, "stdin") != microk8s.Script(s.script) {
			t.Errorf("%s does not run %s", s.name, s.script)
		}
		if tr := mt.Strings(c.Inputs, "triggers"); len(tr) == 0 || tr[0] != microk8s.Hash(s.script) {
			t.Errorf("%s triggers %v do not start with the script's hash", s.name, tr)
		}
		if mt.Str(c.Inputs, "connection.host") != publicIP {
			t.Errorf("%s connects to %q", s.name, mt.Str(c.Inputs, "connection.host"))
		}
		if !mt.IsSecret(c.Inputs, "connection.privateKey") || mt.Str(c.Inputs, "connection.privateKey") != privKey {
			t.Errorf("%s: the SSH private key is not a secret input", s.name)
		}
		if !strings.HasPrefix(mt.Str(c.Inputs, "create"), "sudo -n env ") {
			t.Errorf("%s create = %q", s.name, mt.Str(c.Inputs, "create"))
		}
	}
	install := m.One(t, "command:remote:Command", "microk8s-install")
	if cr := mt.Str(install.Inputs, "create"); !strings.Contains(cr, "CHANNEL='1.35/stable'") || !strings.Contains(cr, "PUBLIC_IP='"+publicIP+"'") {
		t.Errorf("install create = %q", cr)
	}
	if tr := mt.Strings(install.Inputs, "triggers"); !slices.Contains(tr, "1.35/stable") || !slices.Contains(tr, publicIP) {
		t.Errorf("install triggers %v lack its inputs", tr)
	}
	addons := m.One(t, "command:remote:Command", "microk8s-addons")
	if cr := mt.Str(addons.Inputs, "create"); !strings.Contains(cr, "METALLB_ADDRESS='"+privateIP+"'") || !strings.Contains(cr, "OBSERVABILITY='true'") {
		t.Errorf("addons create = %q", cr)
	}
	kc := m.One(t, "command:remote:Command", "microk8s-kubeconfig")
	if !slices.Contains(kc.SecretOutputs, "stdout") {
		t.Error("the kubeconfig step's stdout is not a secret output")
	}
	if mt.Str(kc.Inputs, "logging") != "stderr" {
		t.Errorf("the kubeconfig step logs %q; its stdout is a credential", mt.Str(kc.Inputs, "logging"))
	}
	for _, s := range steps[:3] {
		if mt.Str(m.One(t, "command:remote:Command", s.name).Inputs, "logging") != "stdoutAndStderr" {
			t.Errorf("%s does not show its progress", s.name)
		}
	}

	// The provider is built from that kubeconfig, as a secret, after it.
	p := m.One(t, "pulumi:providers:kubernetes", "microk8s")
	if !mt.IsSecret(p.Inputs, "kubeconfig") || !strings.Contains(mt.Str(p.Inputs, "kubeconfig"), "server: https://"+publicIP+":16443") {
		t.Errorf("provider kubeconfig secret=%v: %q", mt.IsSecret(p.Inputs, "kubeconfig"), mt.Str(p.Inputs, "kubeconfig"))
	}
	if !slices.Contains(p.Dependencies, kc.URN) {
		t.Error("provider does not depend on the kubeconfig step")
	}
	for _, r := range m.Resources {
		if strings.HasPrefix(r.Type, "kubernetes:") && r.Custom && !strings.Contains(r.Provider, "microk8s") {
			t.Errorf("%s %s is not on the MicroK8s provider (%q)", r.Type, r.Name, r.Provider)
		}
	}
}

// assertAWSTags: every taggable AWS resource carries the ownership tags.
func assertAWSTags(t *testing.T, m *mt.Mocks, stack string) {
	t.Helper()
	n := 0
	for _, r := range m.Resources {
		if !strings.HasPrefix(r.Type, "aws:") || r.Type == "pulumi:providers:aws" {
			continue
		}
		if r.Type == "aws:ec2/routeTableAssociation:RouteTableAssociation" || r.Type == "aws:ec2/volumeAttachment:VolumeAttachment" {
			continue // not taggable
		}
		n++
		tags := mt.StringMap(r.Inputs, "tags")
		if tags["project"] != "microk8s-platform" || tags["stack"] != stack || tags["managed-by"] != "pulumi" {
			t.Errorf("%s %s tags = %v", r.Type, r.Name, tags)
		}
	}
	if n < 10 {
		t.Errorf("only %d tagged AWS resources", n)
	}
}

func urnOf(m *mt.Mocks, token, name string) string {
	for _, r := range m.Resources {
		if r.Type == token && r.Name == name {
			return r.URN
		}
	}
	return "missing " + token + " " + name
}

// The admin ports are never open to the world, in any stack or target, and
// a configuration that tries is refused before anything is declared.
func TestAdminPortsNeverOpenToTheWorld(t *testing.T) {
	world := map[string]bool{"0.0.0.0/0": true, "::/0": true}
	admin := func(from, to string) bool { // does the range cover 22 or 16443?
		f, _ := strconv.Atoi(from)
		t, _ := strconv.Atoi(to)
		return from == "-1" || (f <= 22 && 22 <= t) || (f <= 16443 && 16443 <= t)
	}
	cases := map[string]mt.Config{
		"dev":  userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"adminCidrs": `["198.51.100.0/24","2001:db8::/32"]`}),
		"prod": userKeys(mt.StackFile(t, "prod")),
		"gcp": userKeys(mt.StackFile(t, "dev")).Set(map[string]string{
			"target": "gcp", "aws:region": "", "gcp:project": "acme-platform", "gcp:region": "europe-west1",
		}),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			stack := name
			if name == "gcp" {
				stack = "dev"
			}
			m, _ := run(t, stack, c)
			for _, r := range m.ByType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
				cidr := mt.Str(r.Inputs, "cidrIpv4") + mt.Str(r.Inputs, "cidrIpv6")
				if world[cidr] && admin(mt.Str(r.Inputs, "fromPort"), mt.Str(r.Inputs, "toPort")) {
					t.Errorf("rule %s opens %s-%s to %s", r.Name, mt.Str(r.Inputs, "fromPort"), mt.Str(r.Inputs, "toPort"), cidr)
				}
			}
			for _, sg := range m.ByType("aws:ec2/securityGroup:SecurityGroup") {
				if mt.Str(sg.Inputs, "tags.automation") != "microk8s-platform-automation" {
					t.Errorf("security group %s lacks the automation tag scripts/access finds it by", sg.Name)
				}
			}
			for _, f := range m.ByType("gcp:compute/firewall:Firewall") {
				for _, a := range mt.Get(f.Inputs, "allows").ArrayValue() {
					ports := mt.Strings(a.ObjectValue(), "ports")
					opensAdmin := len(ports) == 0 || slices.Contains(ports, "22") || slices.Contains(ports, "16443")
					for _, src := range mt.Strings(f.Inputs, "sourceRanges") {
						if world[src] && opensAdmin && mt.Str(f.Inputs, "direction") == "INGRESS" {
							t.Errorf("firewall %s opens %v to %s", f.Name, ports, src)
						}
					}
				}
			}
		})
	}
	for _, bad := range []string{`["0.0.0.0/0"]`, `["::/0"]`, `["198.51.100.0/24","::/0"]`} {
		_, err := mt.Run(t, "dev", userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"adminCidrs": bad}), Run)
		if err == nil || !strings.Contains(err.Error(), "adminCidrs") || !strings.Contains(err.Error(), "whole internet") {
			t.Errorf("adminCidrs %s: %v", bad, err)
		}
	}
}
