// Package tfcalls runs the provider code pulumi-aws bridges — terraform
// with terraform-provider-aws 5.100.0, what pulumi-aws v6.83.4 wraps —
// over the AWS resources and data sources the platform program declares
// (captured under mocks), against the local AWS emulator, and records every
// AWS API call the provider makes: terraform's JSON log (TF_LOG=JSON)
// names each request's service, operation, the resource type and the
// provider RPC it belongs to, and carries its parameters.
//
// Config turns the captured graph into a terraform JSON configuration:
// each Pulumi type token to its terraform type, each input to its
// attribute or block with the names the bridge maps (camelCase to
// snake_case; a list of objects is a repeated block named in the singular:
// routes -> route, costFilters -> cost_filter, filters -> filter), and every
// value that was another resource's id or output to a reference to it.
// terraform validates the result against the provider's schema, so a
// mis-mapped name fails at plan, not silently.
package tfcalls

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	mt "microk8s-platform/infra/internal/mocktest"
)

// ProviderVersion is the terraform-provider-aws release pulumi-aws v6.83.4
// bridges (pulumi-aws provider/go.mod at v6.83.4: a replace of
// github.com/hashicorp/terraform-provider-aws with the pulumi fork of
// v5.100.0).
const ProviderVersion = "5.100.0"

// Types are the program's resource types: Pulumi token -> terraform type
// (pulumi-aws v6.83.4 provider/resources.go, the Tok of each entry).
var Types = map[string]string{
	"aws:ec2/vpc:Vpc":                                           "aws_vpc",
	"aws:ec2/subnet:Subnet":                                     "aws_subnet",
	"aws:ec2/internetGateway:InternetGateway":                   "aws_internet_gateway",
	"aws:ec2/routeTable:RouteTable":                             "aws_route_table",
	"aws:ec2/routeTableAssociation:RouteTableAssociation":       "aws_route_table_association",
	"aws:ec2/securityGroup:SecurityGroup":                       "aws_security_group",
	"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "aws_vpc_security_group_ingress_rule",
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":   "aws_vpc_security_group_egress_rule",
	"aws:ec2/keyPair:KeyPair":                                   "aws_key_pair",
	"aws:ec2/instance:Instance":                                 "aws_instance",
	"aws:ec2/eip:Eip":                                           "aws_eip",
	"aws:ebs/volume:Volume":                                     "aws_ebs_volume",
	"aws:ec2/volumeAttachment:VolumeAttachment":                 "aws_volume_attachment",
	"aws:budgets/budget:Budget":                                 "aws_budgets_budget",
	"aws:dlm/lifecyclePolicy:LifecyclePolicy":                   "aws_dlm_lifecycle_policy",
}

// DataSources are the program's data sources: Pulumi function token ->
// terraform data source.
var DataSources = map[string]string{
	"aws:index/getAvailabilityZones:getAvailabilityZones":       "aws_availability_zones",
	"aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings": "aws_ec2_instance_type_offerings",
	"aws:ec2/getAmi:getAmi":                                     "aws_ami",
	"aws:ebs/getSnapshot:getSnapshot":                           "aws_ebs_snapshot",
	"aws:index/getCallerIdentity:getCallerIdentity":             "aws_caller_identity",
	"aws:index/getRegion:getRegion":                             "aws_region",
}

// Token returns the Pulumi token of a terraform resource or data source type.
func Token(tfType string) (string, bool) {
	for _, m := range []map[string]string{Types, DataSources} {
		for tok, t := range m {
			if t == tfType {
				return tok, true
			}
		}
	}
	return "", false
}

// Provider is where the provider sends its calls.
type Provider struct {
	Endpoint string   // the emulator (or a recorder in front of it)
	Region   string   // the stack's aws:region
	Services []string // endpoints to point at Endpoint (ec2, sts, budgets)
}

// Config returns the terraform JSON configuration of the AWS resources and
// data-source calls in m, and each resource's terraform address by URN.
func Config(m *mt.Mocks, p Provider) ([]byte, map[string]string, error) {
	addrs := map[string]string{} // URN -> aws_vpc.network
	byURN := map[string]mt.Resource{}
	used := map[string]bool{}
	for _, r := range m.Resources {
		if !r.Custom || !strings.HasPrefix(r.Type, "aws:") {
			continue
		}
		typ, ok := Types[r.Type]
		if !ok {
			return nil, nil, fmt.Errorf("tfcalls: no terraform type for %s %s: add it to Types", r.Type, r.Name)
		}
		name := ident(r.Name)
		for used[typ+"."+name] {
			name += "_"
		}
		used[typ+"."+name] = true
		addrs[r.URN], byURN[r.URN] = typ+"."+name, r
	}
	data := map[string]map[string]any{}
	var amiRef string
	for i, c := range m.Calls {
		if !strings.HasPrefix(c.Token, "aws:") {
			continue
		}
		typ, ok := DataSources[c.Token]
		if !ok {
			return nil, nil, fmt.Errorf("tfcalls: no terraform data source for %s: add it to DataSources", c.Token)
		}
		name := fmt.Sprintf("call_%d", i)
		if data[typ] == nil {
			data[typ] = map[string]any{}
		}
		data[typ][name] = convert("", c.Args.Mappable())
		if typ == "aws_ami" {
			amiRef = "${data.aws_ami." + name + ".id}"
		}
	}
	res := map[string]map[string]any{}
	for urn, addr := range addrs {
		r := byURN[urn]
		body := map[string]any{}
		for k, v := range r.Inputs {
			val := v.Mappable()
			val = refer(val, r.PropertyDeps[string(k)], addrs, byURN)
			if amiRef != "" {
				val = replaceString(val, mt.AMIID, amiRef)
			}
			body[tfName(string(k), v)] = convert(string(k), val)
		}
		var after []string
		for _, d := range r.Dependencies {
			if a, ok := addrs[d]; ok && !slices.Contains(propertyDeps(r), d) {
				after = append(after, a)
			}
		}
		if len(after) > 0 {
			sort.Strings(after)
			body["depends_on"] = after
		}
		if len(r.IgnoreChanges) > 0 {
			var ign []string
			for _, f := range r.IgnoreChanges {
				ign = append(ign, snake(f))
			}
			body["lifecycle"] = map[string]any{"ignore_changes": ign}
		}
		typ, name, _ := strings.Cut(addr, ".")
		fillAttributeBlocks(typ, body)
		if res[typ] == nil {
			res[typ] = map[string]any{}
		}
		res[typ][name] = body
	}
	endpoints := map[string]string{}
	for _, s := range p.Services {
		endpoints[s] = p.Endpoint
	}
	doc := map[string]any{
		"terraform": map[string]any{"required_providers": map[string]any{
			"aws": map[string]any{"source": "hashicorp/aws", "version": ProviderVersion}}},
		"provider": map[string]any{"aws": map[string]any{
			"region": p.Region, "skip_metadata_api_check": true, "endpoints": []any{endpoints},
			// An emulator that answers 500 to a call it lacks would
			// otherwise be retried 25 times with back-off.
			"max_retries": 2,
		}},
		"resource": res,
	}
	if len(data) > 0 {
		doc["data"] = data
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return b, addrs, err
}

// attributeBlocks are blocks terraform-provider-aws declares as
// attributes ("attributes as blocks", SchemaConfigModeAttr: an element
// must name every attribute in JSON syntax); the bridge sends the unset
// ones as null, and so does Config. aws_route_table's route:
// internal/service/ec2/vpc_route_table.go, "route" with ConfigMode
// SchemaConfigModeAttr.
var attributeBlocks = map[string]map[string][]string{
	"aws_route_table": {"route": {
		"carrier_gateway_id", "cidr_block", "core_network_arn", "destination_prefix_list_id",
		"egress_only_gateway_id", "gateway_id", "ipv6_cidr_block", "local_gateway_id", "nat_gateway_id",
		"network_interface_id", "transit_gateway_id", "vpc_endpoint_id", "vpc_peering_connection_id",
	}},
}

func fillAttributeBlocks(typ string, body map[string]any) {
	for block, attrs := range attributeBlocks[typ] {
		elems, _ := body[block].([]any)
		for _, e := range elems {
			m := e.(map[string]any)
			for _, a := range attrs {
				if _, ok := m[a]; !ok {
					m[a] = nil
				}
			}
		}
	}
}

func propertyDeps(r mt.Resource) []string {
	var out []string
	for _, urns := range r.PropertyDeps {
		out = append(out, urns...)
	}
	return out
}

// refer replaces, inside v, every string that is one of deps' ids (or one
// of their string outputs) with a reference to that resource.
func refer(v any, deps []string, addrs map[string]string, byURN map[string]mt.Resource) any {
	for _, urn := range deps {
		d, ok := byURN[urn]
		if !ok {
			continue
		}
		v = replaceString(v, d.ID, "${"+addrs[urn]+".id}")
		for k, out := range d.Outputs {
			if out.IsString() && out.StringValue() != "" && out.StringValue() != d.ID {
				v = replaceString(v, out.StringValue(), "${"+addrs[urn]+"."+snake(string(k))+"}")
			}
		}
	}
	return v
}

func replaceString(v any, from, to string) any {
	switch v := v.(type) {
	case string:
		if v == from {
			return to
		}
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = replaceString(e, from, to)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = replaceString(e, from, to)
		}
		return out
	}
	return v
}

// convert renames the keys of nested objects (blocks) the bridge's way;
// the keys of a map attribute (tags) are data and stay as they are.
func convert(key string, v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = convert(key, e)
		}
		return out
	case map[string]any:
		if mapAttributes[key] {
			return v
		}
		out := map[string]any{}
		for k, e := range v {
			c := convert(k, e)
			if _, isList := c.([]any); oneItemLists[k] && !isList && c != nil {
				c = []any{c}
			}
			out[tfName(k, resource.NewPropertyValue(e))] = c
		}
		return out
	}
	return v
}

// mapAttributes are the program's inputs of map type (not blocks).
var mapAttributes = map[string]bool{"tags": true, "volumeTags": true, "targetTags": true, "tagsToAdd": true, "variableTags": true}

// oneItemLists are terraform lists the bridge shows as one value
// (MaxItemsOne): aws_dlm_lifecycle_policy's create_rule.times is a list of
// at most one time in the provider's schema and a string in pulumi-aws
// v6.83.4 (dlm/pulumiTypes.go, LifecyclePolicyPolicyDetailsScheduleCreateRule).
var oneItemLists = map[string]bool{"times": true}

// tfName is the terraform name of a Pulumi property: snake_case, and a
// list of objects (a repeated block) in the singular.
func tfName(k string, v resource.PropertyValue) string {
	if v.IsArray() && len(v.ArrayValue()) > 0 && v.ArrayValue()[0].IsObject() {
		k = strings.TrimSuffix(k, "s")
	}
	return snake(k)
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

func ident(s string) string { return nonIdent.ReplaceAllString(s, "_") }

// Call is one AWS request the provider sent.
type Call struct {
	Phase    string // what the run was doing (create, refresh, update, replace, destroy)
	Service  string // EC2, Budgets, STS (rpc.service)
	Method   string // the API operation (rpc.method)
	Resource string // terraform resource or data source type
	RPC      string // ReadResource, ReadDataSource, PlanResourceChange, ApplyResourceChange, ...
	Params   url.Values
	Body     string
	Status   int
}

// Read reports whether the call belongs to reading state (refresh, a data
// source), which the read-only roles must be able to make.
func (c Call) Read() bool { return c.RPC == "ReadResource" || c.RPC == "ReadDataSource" }

func (c Call) String() string {
	return fmt.Sprintf("%s %s:%s (%s, %s) %d", c.Resource, c.Service, c.Method, c.RPC, c.Phase, c.Status)
}

// Split moves the resources of the given terraform types out of a
// configuration into a second one with the same provider: a separate
// terraform root, so what the emulator cannot do for them does not stop
// the rest.
func Split(config []byte, types ...string) (rest, split []byte, err error) {
	var doc map[string]any
	if err := json.Unmarshal(config, &doc); err != nil {
		return nil, nil, err
	}
	other := map[string]any{"terraform": doc["terraform"], "provider": doc["provider"]}
	res, _ := doc["resource"].(map[string]any)
	moved := map[string]any{}
	for _, t := range types {
		if r, ok := res[t]; ok {
			moved[t] = r
			delete(res, t)
		}
	}
	other["resource"] = moved
	if rest, err = json.MarshalIndent(doc, "", "  "); err != nil {
		return nil, nil, err
	}
	split, err = json.MarshalIndent(other, "", "  ")
	return rest, split, err
}

// Runner runs terraform in Dir with the plugin folder and environment.
type Runner struct {
	Dir       string
	PluginDir string // where terraform-provider-aws is (the machine's /opt/tf-plugins)
	Env       []string
}

// Init runs terraform init from the plugin folder only (no registry).
func (r Runner) Init() error {
	out, err := r.cmd("init", "-input=false", "-plugin-dir="+r.PluginDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("terraform init: %v\n%s", err, out)
	}
	return nil
}

// Write writes the configuration.
func (r Runner) Write(config []byte) error {
	return os.WriteFile(filepath.Join(r.Dir, "main.tf.json"), config, 0o644)
}

func (r Runner) cmd(args ...string) *exec.Cmd {
	if len(args) > 0 && args[0] != "init" {
		args = append([]string{args[0], "-no-color"}, args[1:]...)
	}
	c := exec.Command("terraform", args...)
	c.Dir = r.Dir
	// No CLI configuration: the plugin folder is given to init.
	c.Env = append(append(os.Environ(), r.Env...), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_CLI_CONFIG_FILE=/dev/null")
	return c
}

// Run runs terraform args with the JSON log on and returns the AWS calls
// the provider made, each marked with phase.
func (r Runner) Run(phase string, args ...string) ([]Call, string, error) {
	logPath := filepath.Join(r.Dir, phase+".log.json")
	c := r.cmd(args...)
	c.Env = append(c.Env, "TF_LOG=JSON", "TF_LOG_PATH="+logPath)
	out, runErr := c.CombinedOutput()
	calls, err := Parse(logPath, phase)
	if err != nil {
		return nil, string(out), err
	}
	if runErr != nil {
		return calls, string(out), fmt.Errorf("terraform %s: %v", strings.Join(args, " "), runErr)
	}
	return calls, string(out), nil
}

// Parse reads the provider's requests (and their answers' status) from a
// terraform JSON log.
func Parse(logPath, phase string) ([]Call, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var calls []Call
	pending := map[string][]int{} // tf_req_id + method -> indexes awaiting an answer
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		str := func(k string) string { s, _ := l[k].(string); return s }
		key := str("tf_req_id") + " " + str("rpc.method")
		switch str("@message") {
		case "HTTP Request Sent":
			typ := str("tf_resource_type")
			if typ == "" {
				typ = str("tf_data_source_type")
			}
			body := str("http.request.body")
			params, _ := url.ParseQuery(strings.TrimSpace(body))
			calls = append(calls, Call{
				Phase: phase, Service: str("rpc.service"), Method: str("rpc.method"),
				Resource: typ, RPC: str("tf_rpc"), Params: params, Body: body,
			})
			pending[key] = append(pending[key], len(calls)-1)
		case "HTTP Response Received":
			if q := pending[key]; len(q) > 0 {
				if code, ok := l["http.status_code"].(float64); ok {
					calls[q[0]].Status = int(code)
				}
				pending[key] = q[1:]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(calls) == 0 {
		return nil, errors.New("tfcalls: the log holds no AWS request (TF_LOG=JSON off, or the provider made none)")
	}
	return calls, nil
}
