// Package mocktest runs the Pulumi program under pulumi.WithMocks with mocks
// that answer like the real providers do (ids, addresses, the AMI lookup,
// the kubeconfig a remote command prints), records every resource and
// function call, and loads the committed stack files as configuration.
package mocktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
	"gopkg.in/yaml.v3"

	"microk8s-platform/internal/repo"
	"microk8s-platform/scripts/microk8s"
)

// Fixed answers of the mocked clouds.
const (
	AWSPublicIP   = "203.0.113.10"
	AWSPrivateIP  = "10.0.1.10"
	GCPPublicIP   = "198.51.100.20"
	GCPPrivateIP  = "10.0.1.2"
	AMIID         = "ami-0123456789abcdef0"
	DataVolumeID  = "vol-0123456789abcdef0"
	GCPDataDiskID = "4242424242"
	Project       = repo.Project
	Account       = "123456789012"
)

// Resource is one registered resource.
type Resource struct {
	Type, Name, URN string
	ID              string // what the mock answered
	Outputs         resource.PropertyMap
	Inputs          resource.PropertyMap
	Custom          bool
	Parent          string
	Dependencies    []string
	PropertyDeps    map[string][]string
	SecretOutputs   []string
	IgnoreChanges   []string
	Provider        string
	Protect         bool
	// The resource options that decide what a replacement and a destroy do.
	DeleteBeforeReplace, RetainOnDelete bool
}

// Call is one function invocation.
type Call struct {
	Token string
	Args  resource.PropertyMap
}

// Zone is one zone the mocked EC2 knows, as DescribeAvailabilityZones
// describes it.
type Zone struct {
	Name, ID    string
	OptInStatus string // opt-in-not-required (Availability Zones), opted-in or not-opted-in (Local Zones)
}

// DefaultZones are us-east-1's zones as an account that opted in to the
// Boston Local Zone sees them: without an opt-in-status filter, the API
// returns the Local Zone too (pulumi-aws v6.83.4 getAvailabilityZones.go:
// "When Local Zones are enabled in a region, by default the API and this
// data source include both Local Zones and Availability Zones"), and its
// name sorts first.
var DefaultZones = []Zone{
	{"us-east-1-bos-1a", "use1-bos1-az1", "opted-in"},
	{"us-east-1a", "use1-az1", "opt-in-not-required"},
	{"us-east-1b", "use1-az2", "opt-in-not-required"},
	{"us-east-1c", "use1-az4", "opt-in-not-required"},
}

// Mocks records resources and answers like the providers.
type Mocks struct {
	Project   string
	Stack     string
	mu        sync.Mutex
	Resources []Resource
	Calls     []Call
	// Zones answer getAvailabilityZones (default DefaultZones).
	Zones []Zone
	// Offered answers getInstanceTypeOfferings: instance type -> zone
	// names offering it; a type not in the map is offered in every zone.
	Offered map[string][]string
	// Snapshots are the EBS snapshot ids that exist.
	Snapshots []string
	// APIStdout is what the apiaddress step (api-address.sh) prints. When
	// empty it prints the address the API server would advertise: the
	// VM's private IP on aws and gcp (one interface), and on target ssh
	// SSHAdvertised, a Vagrant VM's NAT address on its default route.
	APIStdout string
}

// SSHAdvertised is the address the mocked ssh host's API server advertises
// (VirtualBox NAT's guest address, the default route of a Vagrant VM),
// unless Mocks.APIStdout says otherwise.
const SSHAdvertised = "10.0.2.15"

// APIAnswer is what api-address.sh prints for an API server advertising addr.
func APIAnswer(addr string) string {
	return "advertise-address=" + addr + "\nadvertise-port=16443\n"
}

// NewResource answers a resource registration.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	r := Resource{Type: args.TypeToken, Name: args.Name, Inputs: args.Inputs, Custom: args.Custom, Provider: args.Provider}
	if rpc := args.RegisterRPC; rpc != nil {
		r.Parent, r.Dependencies = rpc.GetParent(), rpc.GetDependencies()
		r.SecretOutputs, r.IgnoreChanges = rpc.GetAdditionalSecretOutputs(), rpc.GetIgnoreChanges()
		r.Protect = rpc.GetProtect()
		r.DeleteBeforeReplace = rpc.GetDeleteBeforeReplace()
		r.RetainOnDelete = rpc.GetRetainOnDelete()
		r.PropertyDeps = map[string][]string{}
		for k, v := range rpc.GetPropertyDependencies() {
			r.PropertyDeps[k] = v.GetUrns()
		}
	}
	r.URN = urn(m.Project, m.Stack, r.Parent, args.TypeToken, args.Name)
	out := args.Inputs.Copy()
	id := args.Name + "-id"
	str := resource.NewStringProperty
	switch args.TypeToken {
	case "aws:ec2/instance:Instance":
		out["privateIp"] = str(AWSPrivateIP)
		out["publicIp"] = str("")
		id = "i-0abc"
	case "aws:ebs/volume:Volume":
		id = DataVolumeID
	case "aws:ec2/eip:Eip":
		out["publicIp"] = str(AWSPublicIP)
		id = "eipalloc-0abc"
	case "aws:ec2/vpc:Vpc":
		id = "vpc-0abc"
	case "aws:ec2/subnet:Subnet":
		id = "subnet-0abc"
	case "aws:ec2/securityGroup:SecurityGroup":
		id = "sg-0abc"
	case "aws:ec2/keyPair:KeyPair":
		if _, ok := out["keyName"]; !ok {
			out["keyName"] = str(args.Name)
		}
	case "gcp:compute/disk:Disk":
		out["selfLink"] = str("https://www.googleapis.com/compute/v1/projects/p/zones/z/disks/" + args.Inputs["name"].StringValue())
		out["diskId"] = str(GCPDataDiskID)
	case "gcp:compute/address:Address":
		out["address"] = str(GCPPublicIP)
	case "gcp:compute/instance:Instance":
		nics := out["networkInterfaces"].ArrayValue()
		if len(nics) > 0 {
			nic := nics[0].ObjectValue().Copy()
			nic["networkIp"] = str(GCPPrivateIP)
			nics[0] = resource.NewObjectProperty(nic)
		}
	case "command:remote:Command":
		out["stdout"], out["stderr"] = str(commandStdout(args.Inputs)), str("")
		if v, ok := args.Inputs["stdin"]; ok && v.IsString() && v.StringValue() == microk8s.Script("api-address.sh") {
			out["stdout"] = str(m.apiStdout())
		}
	}
	if mod, typ, ok := awsModuleType(args.TypeToken); ok {
		if _, has := out["arn"]; !has {
			out["arn"] = str(fmt.Sprintf("arn:aws:%s:us-east-1:%s:%s/%s", mod, Account, typ, id))
		}
		if args.TypeToken == "aws:kms/key:Key" {
			out["keyId"] = str(id)
		}
	}
	if strings.HasPrefix(args.TypeToken, "kubernetes:") && args.TypeToken != "pulumi:providers:kubernetes" {
		meta := resource.PropertyMap{}
		if v, ok := out["metadata"]; ok && v.IsObject() {
			meta = v.ObjectValue().Copy()
		}
		if _, ok := meta["name"]; !ok {
			meta["name"] = str(args.Name)
		}
		out["metadata"] = resource.NewObjectProperty(meta)
	}
	r.ID, r.Outputs = id, out
	m.mu.Lock()
	m.Resources = append(m.Resources, r)
	m.mu.Unlock()
	return id, out, nil
}

// apiStdout is the apiaddress step's answer: Mocks.APIStdout, or the
// address of the machine the run declared.
func (m *Mocks) apiStdout() string {
	if m.APIStdout != "" {
		return m.APIStdout
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.Resources {
		switch r.Type {
		case "aws:ec2/instance:Instance":
			return APIAnswer(AWSPrivateIP)
		case "gcp:compute/instance:Instance":
			return APIAnswer(GCPPrivateIP)
		}
	}
	return APIAnswer(SSHAdvertised)
}

// awsModuleType splits "aws:kms/key:Key" into "kms" and "key".
func awsModuleType(token string) (string, string, bool) {
	parts := strings.Split(token, ":")
	if len(parts) != 3 || parts[0] != "aws" {
		return "", "", false
	}
	mod, typ, _ := strings.Cut(parts[1], "/")
	return mod, strings.ToLower(typ), true
}

// urn builds a resource's URN as the engine does: the parent's type chain,
// then this type, then the name.
func urn(project, stack, parent, token, name string) string {
	typ := token
	if parts := strings.Split(parent, "::"); len(parts) == 4 && !strings.HasSuffix(parts[2], "pulumi:pulumi:Stack") {
		typ = parts[2] + "$" + token
	}
	return fmt.Sprintf("urn:pulumi:%s::%s::%s::%s", stack, project, typ, name)
}

var publicIPInCreate = regexp.MustCompile(`PUBLIC_IP='([^']*)'`)

// commandStdout is what the remote step would print: the kubeconfig step
// prints MicroK8s' config with the server rewritten, as kubeconfig.sh does.
func commandStdout(in resource.PropertyMap) string {
	stdin, create := "", ""
	if v, ok := in["stdin"]; ok && v.IsString() {
		stdin = v.StringValue()
	}
	if v, ok := in["create"]; ok && v.IsString() {
		create = v.StringValue()
	}
	if !strings.Contains(stdin, "microk8s config") {
		return "ok\n"
	}
	ip := "unknown"
	if m := publicIPInCreate.FindStringSubmatch(create); m != nil {
		ip = m[1]
	}
	return fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://%s:16443
  name: microk8s-cluster
contexts:
- context: {cluster: microk8s-cluster, user: admin}
  name: microk8s
current-context: microk8s
kind: Config
users:
- name: admin
  user: {client-certificate-data: Q0VSVAo=, client-key-data: S0VZCg==}
`, ip)
}

// Call answers a function invocation.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	m.mu.Lock()
	m.Calls = append(m.Calls, Call{Token: args.Token, Args: args.Args})
	m.mu.Unlock()
	switch args.Token {
	case "aws:index/getAvailabilityZones:getAvailabilityZones":
		// Filters apply as EC2 applies them: a zone passes when, for every
		// filter, its field is one of the values.
		var names, ids []any
		for _, z := range m.zones() {
			if matches(args.Args, map[string]string{"opt-in-status": z.OptInStatus, "zone-name": z.Name, "zone-id": z.ID}) {
				names, ids = append(names, z.Name), append(ids, z.ID)
			}
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": "us-east-1", "names": names, "zoneIds": ids}), nil
	case "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
		// locationType defaults to "region": the locations are then the
		// region, not zones (pulumi-aws v6.83.4 ec2/getInstanceTypeOfferings.go).
		var types, locs, locTypes []any
		byZone := str(args.Args, "locationType") == "availability-zone"
		for _, it := range filterValues(args.Args, "instance-type") {
			zones, listed := m.Offered[it]
			if !listed {
				for _, z := range m.zones() {
					zones = append(zones, z.Name)
				}
			}
			if !byZone {
				zones = []string{"us-east-1"}
			}
			for _, z := range zones {
				types, locs = append(types, it), append(locs, z)
				locTypes = append(locTypes, map[bool]string{true: "availability-zone", false: "region"}[byZone])
			}
		}
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": "us-east-1", "instanceTypes": types, "locations": locs, "locationTypes": locTypes,
		}), nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": Account, "accountId": Account, "arn": "arn:aws:iam::" + Account + ":user/ci", "userId": "AIDAEXAMPLE",
		}), nil
	case "aws:index/getRegion:getRegion":
		return resource.NewPropertyMapFromMap(map[string]any{"id": "us-east-1", "name": "us-east-1", "description": "US East (N. Virginia)"}), nil
	case "aws:ebs/getSnapshot:getSnapshot":
		// Only the snapshots the test says exist (Mocks.Snapshots), as
		// DescribeSnapshots answers for an id it does not know.
		ids := args.Args["snapshotIds"].ArrayValue()
		if len(ids) != 1 {
			return nil, fmt.Errorf("getSnapshot with %d snapshotIds, want 1", len(ids))
		}
		id := ids[0].StringValue()
		if !slices.Contains(m.Snapshots, id) {
			return nil, fmt.Errorf("InvalidSnapshot.NotFound: The snapshot '%s' does not exist", id)
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": id, "snapshotId": id, "volumeSize": 20, "state": "completed"}), nil
	case "gcp:compute/getSnapshot:getSnapshot":
		name := str(args.Args, "name")
		if !slices.Contains(m.Snapshots, name) {
			return nil, fmt.Errorf("googleapi: Error 404: The resource 'projects/p/global/snapshots/%s' was not found", name)
		}
		return resource.NewPropertyMapFromMap(map[string]any{"id": name, "name": name, "diskSizeGb": 20}), nil
	case "aws:ec2/getAmi:getAmi":
		return resource.NewPropertyMapFromMap(map[string]any{
			"id": AMIID, "imageId": AMIID, "architecture": "x86_64",
			"name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251101",
		}), nil
	}
	return args.Args, nil
}

func (m *Mocks) zones() []Zone {
	if m.Zones != nil {
		return m.Zones
	}
	return DefaultZones
}

func str(pm resource.PropertyMap, key resource.PropertyKey) string {
	if v, ok := pm[key]; ok && v.IsString() {
		return v.StringValue()
	}
	return ""
}

// filterValues are the values of the invoke's filter called name.
func filterValues(args resource.PropertyMap, name string) []string {
	var out []string
	if f, ok := args["filters"]; ok && f.IsArray() {
		for _, e := range f.ArrayValue() {
			if e.IsObject() && str(e.ObjectValue(), "name") == name {
				for _, v := range e.ObjectValue()["values"].ArrayValue() {
					out = append(out, v.StringValue())
				}
			}
		}
	}
	return out
}

// matches applies an invoke's filters (and its "state" argument, always
// "available" here) to an object's fields; a filter on a field the mock
// does not model fails the match, so a new filter is noticed.
func matches(args resource.PropertyMap, fields map[string]string) bool {
	if s := str(args, "state"); s != "" && s != "available" {
		return false
	}
	if f, ok := args["filters"]; ok && f.IsArray() {
		for _, e := range f.ArrayValue() {
			name := str(e.ObjectValue(), "name")
			have, known := fields[name]
			if !known || !slices.Contains(filterValues(resource.PropertyMap{"filters": resource.NewArrayProperty([]resource.PropertyValue{e})}, name), have) {
				return false
			}
		}
	}
	return true
}

// ByType returns the recorded resources of a type token.
func (m *Mocks) ByType(token string) []Resource {
	var out []Resource
	for _, r := range m.Resources {
		if r.Type == token {
			out = append(out, r)
		}
	}
	return out
}

// One returns the single resource of token and name, failing the test otherwise.
func (m *Mocks) One(t *testing.T, token, name string) Resource {
	t.Helper()
	for _, r := range m.Resources {
		if r.Type == token && r.Name == name {
			return r
		}
	}
	var names []string
	for _, r := range m.ByType(token) {
		names = append(names, r.Name)
	}
	t.Fatalf("no %s named %q (have %v)", token, name, names)
	return Resource{}
}

// Config is a stack's configuration: key ("project:key") -> value, and the
// keys that are secret.
type Config struct {
	Values  map[string]string
	Secrets []string
}

// StackFile reads a committed Pulumi.<stack>.yaml from the repository root.
func StackFile(t *testing.T, stack string) Config {
	t.Helper()
	return StackFileIn(t, "", stack)
}

// StackFileIn reads Pulumi.<stack>.yaml from dir, relative to the
// repository root (another program's folder, like stacks/backend).
func StackFileIn(t *testing.T, dir, stack string) Config {
	t.Helper()
	path := filepath.Join(repoRoot(t), dir, "Pulumi."+stack+".yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Config map[string]any `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := Config{Values: map[string]string{}}
	for k, v := range doc.Config {
		switch v := v.(type) {
		case string:
			c.Values[k] = v
		default:
			j, _ := json.Marshal(v)
			c.Values[k] = string(j)
		}
	}
	return c
}

// Set sets project keys (without the "microk8s-platform:" prefix unless the
// key has a namespace of its own); a value of nil-equivalent "" deletes.
func (c Config) Set(kv map[string]string) Config {
	out := Config{Values: map[string]string{}, Secrets: slices.Clone(c.Secrets)}
	for k, v := range c.Values {
		out.Values[k] = v
	}
	for k, v := range kv {
		if !strings.Contains(k, ":") {
			k = Project + ":" + k
		}
		if v == "" {
			delete(out.Values, k)
			continue
		}
		out.Values[k] = v
	}
	return out
}

// Secret sets project keys as secrets.
func (c Config) Secret(kv map[string]string) Config {
	out := c.Set(kv)
	for k := range kv {
		out.Secrets = append(out.Secrets, Project+":"+k)
	}
	return out
}

// Run runs program under mocks with c as the stack configuration; opts
// change the mocked clouds' answers (Zones, Offered) before the run.
func Run(t *testing.T, stack string, c Config, program pulumi.RunFunc, opts ...func(*Mocks)) (*Mocks, error) {
	t.Helper()
	return RunProject(t, Project, stack, c, program, opts...)
}

// RunProject is Run for another project (the backend bootstrap); c's keys
// carry that project's namespace.
func RunProject(t *testing.T, project, stack string, c Config, program pulumi.RunFunc, opts ...func(*Mocks)) (*Mocks, error) {
	t.Helper()
	cfg, _ := json.Marshal(c.Values)
	secrets, _ := json.Marshal(c.Secrets)
	t.Setenv(pulumi.EnvConfig, string(cfg))
	t.Setenv(pulumi.EnvConfigSecretKeys, string(secrets))
	m := &Mocks{Project: project, Stack: stack}
	for _, o := range opts {
		o(m)
	}
	err := pulumi.RunErr(program, pulumi.WithMocks(project, stack, m))
	return m, err
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Await resolves an output after the run: its value and whether it is secret.
func Await(o pulumi.Output) (any, bool, error) {
	r, err := internals.UnsafeAwaitOutput(context.Background(), o)
	return r.Value, r.Secret, err
}
