package infra

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"microk8s-platform/infra/gateway"
	mt "microk8s-platform/infra/internal/mocktest"
)

// rbacGrant is one verb on one resource: "group/resource:verb" ("" group is core).
type rbacGrant string

func rbacGrants(group string, resources []string, verbs ...string) []rbacGrant {
	var out []rbacGrant
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, rbacGrant(group+"/"+r+":"+v))
		}
	}
	return out
}

// kic344Controller is a controller of Kong/kubernetes-ingress-controller
// v3.4.4, written down here from its source, independently of
// gateway.Controllers:
//   - which exist and when they run: internal/manager/controllerdef.go
//     (setupControllers) and internal/manager/setup.go (KongLicense);
//   - their switches and defaults: internal/cmd/rootcmd/config/cli.go
//     (every enable-controller-* flag defaults to true),
//     pkg/manager/config/feature_gates_keys.go (GatewayAlpha false,
//     KongServiceFacade false, KongCustomEntity true, FillIDs true), and
//     internal/cmd/rootcmd/env.go (flag foo-bar is read from CONTROLLER_FOO_BAR);
//   - what each reads and writes: the +kubebuilder:rbac markers in
//     internal/controllers/configuration/zz_generated.controllers.go,
//     secret_controller.go, configmap_controller.go and
//     internal/controllers/gateway/*.go;
//   - the CRD each Kong kind needs: github.com/kong/kubernetes-configuration
//     v1.3.0 (KIC's go.mod; config/crd/kustomization.yaml).
type kic344Controller struct {
	name string
	// offBy are the settings that switch it off; any one is enough.
	offBy []string
	// onByDefault: it runs unless switched off (false: only when enabled).
	onByDefault bool
	crd         string // "" for built-in kinds
	needs       []rbacGrant
}

func kongKindNeeds(plural string) []rbacGrant {
	return append(rbacGrants("configuration.konghq.com", []string{plural}, "get", "list", "watch"),
		rbacGrants("configuration.konghq.com", []string{plural + "/status"}, "get", "update", "patch")...)
}

func kicFlagOff(flag string) string { return "CONTROLLER_" + flag + "=false" }
func kicGateOff(gate string) string { return "gate:" + gate + "=false" }

var kic344Controllers = []kic344Controller{
	{name: "IngressClass (networking.k8s.io/v1)", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_INGRESS_CLASS_NETWORKINGV1")},
		needs: rbacGrants("networking.k8s.io", []string{"ingressclasses"}, "get", "list", "watch")},
	{name: "Ingress (networking.k8s.io/v1)", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_INGRESS_NETWORKINGV1")},
		needs: append(rbacGrants("networking.k8s.io", []string{"ingresses"}, "get", "list", "watch"),
			rbacGrants("networking.k8s.io", []string{"ingresses/status"}, "get", "update", "patch")...)},
	{name: "Service", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_SERVICE")},
		needs: append(rbacGrants("", []string{"services"}, "get", "list", "watch"), rbacGrants("", []string{"services/status"}, "get", "update", "patch")...)},
	{name: "EndpointSlice", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_SERVICE")},
		needs: rbacGrants("discovery.k8s.io", []string{"endpointslices"}, "list", "watch")},
	{name: "Secret (always on)", onByDefault: true, needs: rbacGrants("", []string{"secrets"}, "list", "watch")},
	{name: "ConfigMap (always on, new in 3.4)", onByDefault: true, needs: rbacGrants("", []string{"configmaps"}, "list", "watch")},
	{name: "UDPIngress", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_UDPINGRESS")},
		crd: "udpingresses.configuration.konghq.com", needs: kongKindNeeds("udpingresses")},
	{name: "TCPIngress", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_TCPINGRESS")},
		crd: "tcpingresses.configuration.konghq.com", needs: kongKindNeeds("tcpingresses")},
	{name: "KongIngress", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONGINGRESS")},
		crd: "kongingresses.configuration.konghq.com", needs: kongKindNeeds("kongingresses")},
	{name: "IngressClassParameters", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_INGRESS_CLASS_PARAMETERS")},
		crd: "ingressclassparameterses.configuration.konghq.com", needs: rbacGrants("configuration.konghq.com", []string{"ingressclassparameterses"}, "get", "list", "watch")},
	{name: "KongPlugin", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONGPLUGIN")},
		crd: "kongplugins.configuration.konghq.com", needs: kongKindNeeds("kongplugins")},
	{name: "KongConsumer", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONGCONSUMER")},
		crd: "kongconsumers.configuration.konghq.com", needs: kongKindNeeds("kongconsumers")},
	{name: "KongConsumerGroup", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONGCONSUMER")},
		crd: "kongconsumergroups.configuration.konghq.com", needs: kongKindNeeds("kongconsumergroups")},
	{name: "KongClusterPlugin", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONGCLUSTERPLUGIN")},
		crd: "kongclusterplugins.configuration.konghq.com", needs: kongKindNeeds("kongclusterplugins")},
	{name: "KongUpstreamPolicy", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONG_UPSTREAM_POLICY")},
		crd: "kongupstreampolicies.configuration.konghq.com", needs: kongKindNeeds("kongupstreampolicies")},
	{name: "KongVault", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONG_VAULT")},
		crd: "kongvaults.configuration.konghq.com", needs: kongKindNeeds("kongvaults")},
	{name: "KongCustomEntity", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONG_CUSTOM_ENTITY"), kicGateOff("KongCustomEntity")},
		crd: "kongcustomentities.configuration.konghq.com", needs: kongKindNeeds("kongcustomentities")},
	{name: "KongLicense (setup.go)", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_KONG_LICENSE")},
		crd: "konglicenses.configuration.konghq.com", needs: kongKindNeeds("konglicenses")},
	// Gateway API: DynamicCRDControllers, on by default and started as soon
	// as the Gateway API CRDs exist.
	{name: "Gateway API Gateway", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_GWAPI_GATEWAY")},
		crd: "gateways.gateway.networking.k8s.io", needs: rbacGrants("gateway.networking.k8s.io", []string{"gateways"}, "get", "list", "watch", "update")},
	{name: "Gateway API HTTPRoute", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_GWAPI_HTTPROUTE")},
		crd: "httproutes.gateway.networking.k8s.io", needs: rbacGrants("gateway.networking.k8s.io", []string{"httproutes"}, "get", "list", "watch")},
	{name: "Gateway API ReferenceGrant", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_GWAPI_REFERENCE_GRANT")},
		crd: "referencegrants.gateway.networking.k8s.io", needs: rbacGrants("gateway.networking.k8s.io", []string{"referencegrants"}, "get", "list", "watch")},
	{name: "Gateway API GRPCRoute", onByDefault: true, offBy: []string{kicFlagOff("ENABLE_CONTROLLER_GWAPI_GRPCROUTE")},
		crd: "grpcroutes.gateway.networking.k8s.io", needs: rbacGrants("gateway.networking.k8s.io", []string{"grpcroutes"}, "get", "list", "watch")},
	// Off by default: they must stay off.
	{name: "KongAdminAPIService (only with --kong-admin-svc)"},
	{name: "KongServiceFacade (gate KongServiceFacade, default false)", offBy: []string{kicGateOff("KongServiceFacade"), kicFlagOff("ENABLE_CONTROLLER_KONG_SERVICE_FACADE")}},
	{name: "UDPRoute/TCPRoute/TLSRoute/BackendTLSPolicy (gate GatewayAlpha, default false)", offBy: []string{kicGateOff("GatewayAlpha")}},
}

// kicManagerNeeds are what KIC v3.4.4 needs besides its controllers:
// events (--emit-kubernetes-events defaults to true). Leases are not
// among them: internal/manager/setup.go leaderElectionEnabled turns leader
// election off in DB-less mode without --kong-admin-svc.
var kicManagerNeeds = rbacGrants("", []string{"events"}, "create", "patch")

// kongSettings are the ingress-controller container's env as "NAME=value"
// entries, with its feature gates as "gate:<name>=<bool>" entries.
func kongSettings(t *testing.T, objs []kubeObject) map[string]bool {
	t.Helper()
	d := find(t, objs, "Deployment", gateway.Namespace, "kong")
	set := map[string]bool{}
	for _, c := range containers(d) {
		if mt.Str(c, "name") != "ingress-controller" {
			continue
		}
		for _, e := range mt.Get(c, "env").ArrayValue() {
			o := e.ObjectValue()
			name, value := mt.Str(o, "name"), mt.Str(o, "value")
			set[name+"="+value] = true
			if name == "CONTROLLER_FEATURE_GATES" {
				for _, kv := range strings.Split(value, ",") {
					set["gate:"+strings.TrimSpace(kv)] = true
				}
			}
		}
	}
	if len(set) == 0 {
		t.Fatalf("no ingress-controller container env found")
	}
	return set
}

// kongGrants are the grants bound to Kong's ServiceAccount, cluster-wide
// and per namespace.
func kongGrants(t *testing.T, objs []kubeObject) (cluster, namespaced map[rbacGrant]bool) {
	t.Helper()
	cluster, namespaced = map[rbacGrant]bool{}, map[rbacGrant]bool{}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, b := range ofKind(objs, kind) {
			subj := mt.Get(b.Inputs, "subjects[0]").ObjectValue()
			if mt.Str(subj, "name") != "kong" || mt.Str(subj, "namespace") != gateway.Namespace {
				continue
			}
			roleKind := strings.TrimSuffix(kind, "Binding")
			role := find(t, objs, roleKind, b.Namespace, mt.Str(b.Inputs, "roleRef.name"))
			into := cluster
			if roleKind == "Role" {
				into = namespaced
			}
			for _, rule := range mt.Get(role.Inputs, "rules").ArrayValue() {
				r := rule.ObjectValue()
				for _, g := range mt.Strings(r, "apiGroups") {
					for _, gr := range rbacGrants(g, mt.Strings(r, "resources"), mt.Strings(r, "verbs")...) {
						into[gr] = true
					}
				}
			}
		}
	}
	return cluster, namespaced
}

// kongDeclared is what the program gives KIC: its settings, its grants and
// the CRDs in the cluster (name -> "<plural>.<group>" from the spec).
type kongDeclared struct {
	settings            map[string]bool
	cluster, namespaced map[rbacGrant]bool
	crds                map[string]string
}

func declaredForKong(t *testing.T, objs []kubeObject) kongDeclared {
	t.Helper()
	d := kongDeclared{settings: kongSettings(t, objs), crds: map[string]string{}}
	d.cluster, d.namespaced = kongGrants(t, objs)
	for _, c := range ofKind(objs, "CustomResourceDefinition") {
		served := false
		for _, v := range mt.Get(c.Inputs, "spec.versions").ArrayValue() {
			served = served || mt.Str(v.ObjectValue(), "served") == "true"
		}
		if served {
			d.crds[c.Name] = mt.Str(c.Inputs, "spec.names.plural") + "." + mt.Str(c.Inputs, "spec.group")
		}
	}
	return d
}

// kongControllerProblems checks d against kic344Controllers: each
// controller on by default is switched off or served (CRD + grants),
// the default-off ones stay off, nothing is granted that no running
// controller uses, and every switch set is a real one. It returns the
// served and switched-off controllers too.
func kongControllerProblems(d kongDeclared) (problems, served, off []string) {
	needed := map[rbacGrant]bool{}
	for _, g := range kicManagerNeeds {
		needed[g] = true
	}
	neededCRDs := map[string]bool{}
	known := map[string]bool{}
	for _, c := range kic344Controllers {
		isOff := false
		for _, s := range c.offBy {
			known[s] = true
			isOff = isOff || d.settings[s]
		}
		switch {
		case !c.onByDefault:
			for _, s := range c.offBy {
				if on := strings.Replace(s, "=false", "=true", 1); d.settings[on] {
					problems = append(problems, fmt.Sprintf("%s is switched on (%s)", c.name, on))
				}
			}
			for s := range d.settings {
				if strings.HasPrefix(s, "CONTROLLER_KONG_ADMIN_SVC=") && strings.HasPrefix(c.name, "KongAdminAPIService") {
					problems = append(problems, fmt.Sprintf("%s is switched on (%s)", c.name, s))
				}
			}
		case isOff:
			off = append(off, c.name)
		default:
			served = append(served, c.name)
			if c.crd != "" {
				neededCRDs[c.crd] = true
				if d.crds[c.crd] != c.crd {
					problems = append(problems, fmt.Sprintf("%s runs, but its CRD %s is not declared and served: its cache never syncs and KIC exits", c.name, c.crd))
				}
			}
			for _, g := range c.needs {
				needed[g] = true
				if !d.cluster[g] {
					problems = append(problems, fmt.Sprintf("%s runs, but Kong's ServiceAccount lacks %s cluster-wide", c.name, g))
				}
			}
		}
	}
	for _, g := range rbacGrantList(d.cluster) {
		if !needed[rbacGrant(g)] {
			problems = append(problems, fmt.Sprintf("ClusterRole grants %s, which no running controller of KIC 3.4.4 uses", g))
		}
	}
	if len(d.namespaced) > 0 {
		problems = append(problems, fmt.Sprintf("namespaced grants %v: KIC 3.4 in DB-less mode uses none (no leader election, no ConfigMap lock)", rbacGrantList(d.namespaced)))
	}
	for name := range d.crds {
		if strings.HasSuffix(name, "konghq.com") && !neededCRDs[name] {
			problems = append(problems, fmt.Sprintf("CRD %s is declared, but its controller is switched off", name))
		}
	}
	// KIC ignores unknown variables, so a misspelt switch leaves its
	// controller on; an unknown gate makes KIC exit.
	for s := range d.settings {
		if (strings.HasPrefix(s, "CONTROLLER_ENABLE_CONTROLLER_") || strings.HasPrefix(s, "gate:")) && !known[s] &&
			!known[strings.Replace(s, "=true", "=false", 1)] {
			problems = append(problems, fmt.Sprintf("%s switches no KIC 3.4.4 controller", s))
		}
	}
	sort.Strings(problems)
	return problems, served, off
}

// Every controller KIC v3.4.4 runs by default is either switched off by
// name in the controller's environment or fully served: its CRD declared
// and every rbacGrant it needs bound cluster-wide. Nothing else is granted.
func TestKongControllersAreSwitchedOffOrServed(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			problems, served, off := kongControllerProblems(declaredForKong(t, objs))
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("served: %v\nswitched off: %v", served, off)
			for _, want := range []string{"Ingress (networking.k8s.io/v1)", "IngressClass (networking.k8s.io/v1)", "Service", "EndpointSlice", "KongPlugin", "KongClusterPlugin"} {
				if !slices.Contains(served, want) {
					t.Errorf("%s is not served; the platform's Ingress and plugins need it", want)
				}
			}
			// Leader election stays off (so no Lease is needed): DB-less and
			// no gateway discovery (setup.go leaderElectionEnabled).
			var dbless bool
			for _, c := range containers(find(t, objs, "Deployment", gateway.Namespace, "kong")) {
				for _, e := range mt.Get(c, "env").ArrayValue() {
					dbless = dbless || (mt.Str(e.ObjectValue(), "name") == "KONG_DATABASE" && mt.Str(e.ObjectValue(), "value") == "off")
				}
			}
			if !dbless {
				t.Error("KONG_DATABASE is not off: outside DB-less mode KIC elects a leader and needs Leases")
			}
		})
	}
}

// The check above fails for each way of getting it wrong.
func TestKongControllerCheckCatchesMistakes(t *testing.T) {
	m, _ := runStack(t, "dev")
	base := declaredForKong(t, kubeObjects(m))
	clone := func() kongDeclared {
		d := kongDeclared{settings: map[string]bool{}, cluster: map[rbacGrant]bool{}, namespaced: map[rbacGrant]bool{}, crds: map[string]string{}}
		for k, v := range base.settings {
			d.settings[k] = v
		}
		for k, v := range base.cluster {
			d.cluster[k] = v
		}
		for k, v := range base.crds {
			d.crds[k] = v
		}
		return d
	}
	cases := map[string]struct {
		mutate func(d *kongDeclared)
		want   string
	}{
		"KongVault switched on without CRD": {func(d *kongDeclared) { delete(d.settings, "CONTROLLER_ENABLE_CONTROLLER_KONG_VAULT=false") }, "KongVault runs, but its CRD"},
		"ConfigMaps not listable":           {func(d *kongDeclared) { delete(d.cluster, "/configmaps:list") }, "ConfigMap (always on, new in 3.4) runs, but Kong's ServiceAccount lacks /configmaps:list"},
		"KongPlugin CRD missing":            {func(d *kongDeclared) { delete(d.crds, "kongplugins.configuration.konghq.com") }, "KongPlugin runs, but its CRD"},
		"Gateway API left on":               {func(d *kongDeclared) { delete(d.settings, "CONTROLLER_ENABLE_CONTROLLER_GWAPI_HTTPROUTE=false") }, "Gateway API HTTPRoute runs"},
		"leases granted":                    {func(d *kongDeclared) { d.namespaced["coordination.k8s.io/leases:get"] = true }, "namespaced grants"},
		"endpoints granted":                 {func(d *kongDeclared) { d.cluster["/endpoints:list"] = true }, "ClusterRole grants /endpoints:list"},
		"misspelt switch":                   {func(d *kongDeclared) { d.settings["CONTROLLER_ENABLE_CONTROLLER_KONGVAULT=false"] = true }, "CONTROLLER_ENABLE_CONTROLLER_KONGVAULT=false switches no"},
		"alpha gate on":                     {func(d *kongDeclared) { d.settings["gate:GatewayAlpha=true"] = true }, "switched on (gate:GatewayAlpha=true)"},
	}
	if p, _, _ := kongControllerProblems(clone()); len(p) != 0 {
		t.Fatalf("the declared objects already fail: %v", p)
	}
	for name, c := range cases {
		d := clone()
		c.mutate(&d)
		p, _, _ := kongControllerProblems(d)
		if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, c.want) }) {
			t.Errorf("%s: problems %v, want one containing %q", name, p, c.want)
		}
	}
}

// The Deployment starts only after what its controller needs exists: the
// ServiceAccount, the ClusterRole and its binding, and every CRD.
func TestKongWaitsForItsRBACAndCRDs(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	d := find(t, objs, "Deployment", gateway.Namespace, "kong")
	var want []string
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"} {
		for _, o := range ofKind(objs, kind) {
			if kind == "ServiceAccount" && (o.Namespace != gateway.Namespace || o.Name != "kong") {
				continue
			}
			if kind != "ServiceAccount" && kind != "CustomResourceDefinition" && o.Name != "kong-ingress-controller" {
				continue
			}
			want = append(want, o.URN)
		}
	}
	if len(want) < 5 {
		t.Fatalf("found only %v to wait for", want)
	}
	for _, u := range want {
		if !slices.Contains(d.Dependencies, u) {
			t.Errorf("Deployment kong does not wait for %s", u)
		}
	}
}

// kong-proxy keeps the client's source address, so rate limiting by IP
// (the app's KongPlugin) counts clients, not the node: with the default
// policy, Cluster, kube-proxy SNATs LoadBalancer and NodePort traffic to
// the node's address (kubernetes.io/docs/tasks/access-application-cluster/
// create-external-load-balancer/#preserving-the-client-source-ip).
func TestKongProxyKeepsClientSourceIP(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			svc := find(t, kubeObjects(m), "Service", gateway.Namespace, gateway.ProxyService)
			typ := mt.Str(svc.Inputs, "spec.type")
			if typ != "LoadBalancer" && typ != "NodePort" {
				t.Fatalf("proxy Service type %q", typ)
			}
			if got := mt.Str(svc.Inputs, "spec.externalTrafficPolicy"); got != "Local" {
				t.Errorf("%s proxy Service has externalTrafficPolicy %q: Kong would see the node's address, not the client's", typ, got)
			}
		})
	}
}

func rbacGrantList(m map[rbacGrant]bool) []string {
	var out []string
	for k := range m {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return out
}
