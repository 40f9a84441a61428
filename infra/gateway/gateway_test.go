package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// The embedded CRDs are byte for byte those of
// github.com/kong/kubernetes-configuration v1.3.0 (the version KIC v3.4.4's
// go.mod requires and its config/crd/kustomization.yaml installs),
// config/crd/ingress-controller. The digests were taken from the module as
// `go mod download` fetched it (module sum
// h1:N6Kl/AmRvDV6He35q2kvNiVCaUM7oL50xQnwI4t5lRM=); an edit fails here.
func TestCRDsAreUpstreamBytes(t *testing.T) {
	want := map[string]string{
		"configuration.konghq.com_kongplugins.yaml":        "a2505354977e67ef769591b837b37bb78b807a233b016ae8448882261ef65cdf",
		"configuration.konghq.com_kongclusterplugins.yaml": "2cfb50daeb9424514e8b4a1a6ec58833637feb84a5ac5575b56bdfe8b6390051",
	}
	files, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("embedded %v, want %d files", files, len(want))
	}
	for _, f := range files {
		b, _ := crdFiles.ReadFile(f)
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(f, "crds/")
		if got := hex.EncodeToString(sum[:]); got != want[name] {
			t.Errorf("%s: sha256 %s, want %s (upstream %s)", f, got, want[name], CRDSource)
		}
		crd, err := LoadCRD(name)
		if err != nil {
			t.Fatal(err)
		}
		ann := crd.Object["metadata"].(map[string]any)["annotations"].(map[string]any)
		if ann["kubernetes-configuration.konghq.com/version"] != "v1.3.0" {
			t.Errorf("%s: version annotation %v", f, ann)
		}
	}
}

// Each served Kong kind has its CRD, and the CRD serves the version KIC
// v3.4.4 watches (configuration.konghq.com/v1 for KongPlugin and
// KongClusterPlugin: pkg/apis/configuration/v1 in the KIC tree).
func TestServedControllersHaveTheirCRD(t *testing.T) {
	for _, c := range Controllers {
		if c.CRDFile == "" {
			continue
		}
		crd, err := LoadCRD(c.CRDFile)
		if err != nil {
			t.Fatal(err)
		}
		spec := crd.Object["spec"].(map[string]any)
		var v1 bool
		for _, v := range spec["versions"].([]any) {
			vm := v.(map[string]any)
			v1 = v1 || (vm["name"] == "v1" && vm["served"] == true && vm["storage"] == true)
		}
		plural := spec["names"].(map[string]any)["plural"].(string)
		if !v1 || spec["group"] != "configuration.konghq.com" || !slices.ContainsFunc(c.Rules, func(r Rule) bool { return slices.Contains(r.Resources, plural) }) {
			t.Errorf("%s: CRD %s (group %v, v1 served %v) does not match its grants %v", c.Name, crd.Name(), spec["group"], v1, c.Rules)
		}
	}
}

// KIC reads flag foo-bar from CONTROLLER_FOO_BAR
// (internal/cmd/rootcmd/env.go, v3.4.4: envKeyPrefix + ToUpper(ReplaceAll(name, "-", "_"))).
func TestEnvVarNameFollowsKIC(t *testing.T) {
	if got := EnvVarName("enable-controller-kong-upstream-policy"); got != "CONTROLLER_ENABLE_CONTROLLER_KONG_UPSTREAM_POLICY" {
		t.Errorf("got %s", got)
	}
	env := Env()
	if env["CONTROLLER_ENABLE_CONTROLLER_KONG_VAULT"] != "false" || env["CONTROLLER_ENABLE_CONTROLLER_KONGPLUGIN"] != "" {
		t.Errorf("env %v", env)
	}
	// feature gates: k8s component-base MapStringBool syntax, every gate
	// named in the table, sorted.
	if got := env["CONTROLLER_FEATURE_GATES"]; got != "GatewayAlpha=false,KongCustomEntity=false,KongServiceFacade=false" {
		t.Errorf("CONTROLLER_FEATURE_GATES=%q", got)
	}
}

// Controllers sharing a switch (enable-controller-service: Service and
// EndpointSlice; enable-controller-kongconsumer: KongConsumer and
// KongConsumerGroup; gate GatewayAlpha) cannot be split; Env refuses.
func TestEnvRefusesASplitSwitch(t *testing.T) {
	saved := Controllers
	defer func() { Controllers = saved }()
	Controllers = slices.Clone(saved)
	for i := range Controllers {
		if Controllers[i].Name == "KongV1Beta1KongConsumerGroupReconciler" {
			Controllers[i].Serve = true
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Env accepted KongConsumerGroup on with KongConsumer off")
		}
	}()
	Env()
}

// The ClusterRole is the merged grants of the running controllers plus
// events; for KIC v3.4.4's markers that is read-only everywhere except
// the status subresources and events.
func TestClusterRulesWriteOnlyStatusAndEvents(t *testing.T) {
	var all []string
	for _, r := range ClusterRules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				all = append(all, r.Groups[0]+"/"+res+":"+v)
				if v != "get" && v != "list" && v != "watch" && !strings.HasSuffix(res, "/status") && res != "events" {
					t.Errorf("%s/%s may %s", r.Groups[0], res, v)
				}
			}
		}
	}
	for _, want := range []string{"/configmaps:list", "/configmaps:watch", "/secrets:watch", "configuration.konghq.com/kongclusterplugins:list", "networking.k8s.io/ingresses/status:update"} {
		if !slices.Contains(all, want) {
			t.Errorf("missing %s in %v", want, all)
		}
	}
	for _, not := range []string{"/secrets:get", "/endpoints:list", "/pods:list", "apiextensions.k8s.io/customresourcedefinitions:list"} {
		if slices.Contains(all, not) {
			t.Errorf("%s granted: KIC 3.4.4 with these controllers does not use it", not)
		}
	}
}
