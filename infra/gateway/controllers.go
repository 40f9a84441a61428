package gateway

import (
	"fmt"
	"sort"
	"strings"
)

// Controller is one controller the pinned KIC (ControllerImage, v3.4.4)
// can run, and what this platform does with it. Source of the list:
// Kong/kubernetes-ingress-controller v3.4.4, internal/manager/controllerdef.go
// (setupControllers) and internal/manager/setup.go (setupLicenseGetter);
// the switches' defaults are in internal/cmd/rootcmd/config/cli.go (every
// enable-controller-* flag defaults to true) and
// pkg/manager/config/feature_gates_keys.go; the grants are the controllers'
// +kubebuilder:rbac markers (internal/controllers/...), which generate
// upstream's config/rbac/role.yaml.
type Controller struct {
	// Name is the reconciler's type in controllerdef.go.
	Name string
	// Flag is the enable-controller-* flag that switches it (set through
	// the environment as CONTROLLER_<FLAG>, internal/cmd/rootcmd/env.go);
	// "" where there is none.
	Flag string
	// Gate is the feature gate it also needs ("" for none) and GateOn that
	// gate's default in v3.4.4. Env sets every gate in the table
	// explicitly, so a later default cannot switch one on unnoticed.
	Gate   string
	GateOn bool
	// Only is the setting without which it never runs ("" if none).
	Only string
	// Serve: true if the platform runs it (with its CRD and grants),
	// false if it is switched off.
	Serve bool
	// CRDFile is its upstream CRD under crds/, for Kong's own kinds.
	CRDFile string
	// Rules are the grants it declares; the ClusterRole holds exactly the
	// union of those of the controllers that run, plus ManagerRules.
	Rules []Rule
}

// Runs reports whether KIC, given Env(), starts the controller.
func (c Controller) Runs() bool { return c.Serve }

var (
	readOnly  = []string{"get", "list", "watch"}
	listWatch = []string{"list", "watch"}
	status    = []string{"get", "update", "patch"}
)

func kongKind(plural string) []Rule {
	return []Rule{
		{[]string{"configuration.konghq.com"}, []string{plural}, readOnly},
		{[]string{"configuration.konghq.com"}, []string{plural + "/status"}, status},
	}
}

// Controllers is every controller KIC v3.4.4 knows, in controllerdef.go's
// order. We serve the ones the platform uses — Ingress through the
// IngressClass "kong", the Services and EndpointSlices behind it, the
// Secrets and ConfigMaps those may reference (KIC always runs those two),
// KongPlugin and KongClusterPlugin — and switch every other one off by
// name: KIC 3.4 does not skip a Kong kind whose CRD is missing, it times out
// that controller's cache sync and exits, and each kind served is one more
// CRD to keep at KIC's version and more for the ServiceAccount to read.
// A user who needs another kind adds its CRD file from CRDSource and flips
// Serve; the tests then demand its grants.
var Controllers = []Controller{
	{Name: "KongAdminAPIServiceReconciler", Only: "kong-admin-svc"}, // gateway discovery: Kong runs in this pod, its admin API on loopback
	{Name: "NetV1IngressClassReconciler", Flag: "enable-controller-ingress-class-networkingv1", Serve: true,
		Rules: []Rule{{[]string{"networking.k8s.io"}, []string{"ingressclasses"}, readOnly}}},
	{Name: "NetV1IngressReconciler", Flag: "enable-controller-ingress-networkingv1", Serve: true,
		Rules: []Rule{
			{[]string{"networking.k8s.io"}, []string{"ingresses"}, readOnly},
			{[]string{"networking.k8s.io"}, []string{"ingresses/status"}, status},
		}},
	{Name: "CoreV1ServiceReconciler", Flag: "enable-controller-service", Serve: true,
		Rules: []Rule{
			{[]string{""}, []string{"services"}, readOnly},
			{[]string{""}, []string{"services/status"}, status},
		}},
	{Name: "DiscoveryV1EndpointSliceReconciler", Flag: "enable-controller-service", Serve: true,
		Rules: []Rule{{[]string{"discovery.k8s.io"}, []string{"endpointslices"}, listWatch}}},
	{Name: "CoreV1SecretReconciler", Serve: true, // always on
		Rules: []Rule{{[]string{""}, []string{"secrets"}, listWatch}}},
	{Name: "CoreV1ConfigMapReconciler", Serve: true, // always on, new in 3.4
		Rules: []Rule{{[]string{""}, []string{"configmaps"}, listWatch}}},
	{Name: "KongV1Beta1UDPIngressReconciler", Flag: "enable-controller-udpingress"},
	{Name: "KongV1Beta1TCPIngressReconciler", Flag: "enable-controller-tcpingress"},
	{Name: "KongV1KongIngressReconciler", Flag: "enable-controller-kongingress"},
	{Name: "KongV1Alpha1IngressClassParametersReconciler", Flag: "enable-controller-ingress-class-parameters"},
	{Name: "KongV1KongPluginReconciler", Flag: "enable-controller-kongplugin", Serve: true,
		CRDFile: "configuration.konghq.com_kongplugins.yaml", Rules: kongKind("kongplugins")},
	{Name: "KongV1KongConsumerReconciler", Flag: "enable-controller-kongconsumer"},
	{Name: "KongV1Beta1KongConsumerGroupReconciler", Flag: "enable-controller-kongconsumer"},
	{Name: "KongV1KongClusterPluginReconciler", Flag: "enable-controller-kongclusterplugin", Serve: true,
		CRDFile: "configuration.konghq.com_kongclusterplugins.yaml", Rules: kongKind("kongclusterplugins")},
	{Name: "KongUpstreamPolicyReconciler", Flag: "enable-controller-kong-upstream-policy"},
	{Name: "IncubatorV1Alpha1KongServiceFacadeReconciler", Flag: "enable-controller-kong-service-facade", Gate: "KongServiceFacade"},
	{Name: "KongV1Alpha1KongVaultReconciler", Flag: "enable-controller-kong-vault"},
	{Name: "KongV1Alpha1KongCustomEntityReconciler", Flag: "enable-controller-kong-custom-entity", Gate: "KongCustomEntity", GateOn: true},
	// Gateway API: each runs as soon as the cluster has the Gateway API
	// CRDs (crds.DynamicCRDController watches for them). MicroK8s has none
	// unless its gateway addon is enabled; off, so enabling that addon
	// later does not start controllers this ServiceAccount may not serve.
	{Name: "GatewayReconciler", Flag: "enable-controller-gwapi-gateway"},
	{Name: "HTTPRouteReconciler", Flag: "enable-controller-gwapi-httproute"},
	{Name: "ReferenceGrantReconciler", Flag: "enable-controller-gwapi-reference-grant"},
	{Name: "GRPCRouteReconciler", Flag: "enable-controller-gwapi-grpcroute"},
	{Name: "UDPRouteReconciler", Gate: "GatewayAlpha"},
	{Name: "TCPRouteReconciler", Gate: "GatewayAlpha"},
	{Name: "TLSRouteReconciler", Gate: "GatewayAlpha"},
	{Name: "BackendTLSPolicyReconciler", Gate: "GatewayAlpha"},
	// setup.go: a DynamicCRDController for KongLicense (Enterprise).
	{Name: "KongV1Alpha1KongLicenseReconciler", Flag: "enable-controller-kong-license"},
}

// ManagerRules are what KIC needs besides its controllers: recording
// events (--emit-kubernetes-events defaults to true; the config/rbac
// markers in internal/controllers/configuration). Nothing else: leader
// election is off in DB-less mode without --kong-admin-svc
// (internal/manager/setup.go leaderElectionEnabled), so no Lease; anonymous
// reports, which read nodes and pods, are off (CONTROLLER_ANONYMOUS_REPORTS);
// no DynamicCRDController runs, so no CustomResourceDefinition watch.
var ManagerRules = []Rule{
	{[]string{""}, []string{"events"}, []string{"create", "patch"}},
}

// EnvVarName is the environment variable KIC reads for a flag.
func EnvVarName(flag string) string {
	return "CONTROLLER_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Env are the controller container's settings that switch controllers
// off: CONTROLLER_ENABLE_CONTROLLER_*=false for every switched-off
// controller's flag, and CONTROLLER_FEATURE_GATES setting every gate in
// the table (false for a switched-off controller). Gates not in the table
// keep their defaults. It panics if controllers sharing a switch disagree.
func Env() map[string]string {
	env := map[string]string{}
	flags := map[string]bool{}
	gates := map[string]bool{}
	for _, c := range Controllers {
		if c.Flag != "" {
			if prev, ok := flags[c.Flag]; ok && prev != c.Serve {
				panic(fmt.Sprintf("gateway: controllers sharing %s disagree", c.Flag))
			}
			flags[c.Flag] = c.Serve
		}
		if c.Gate != "" {
			if prev, ok := gates[c.Gate]; ok && prev != c.Serve {
				panic(fmt.Sprintf("gateway: controllers sharing gate %s disagree", c.Gate))
			}
			gates[c.Gate] = c.Serve
		}
	}
	for f, on := range flags {
		if !on {
			env[EnvVarName(f)] = "false"
		}
	}
	var gs []string
	for g, on := range gates {
		gs = append(gs, fmt.Sprintf("%s=%t", g, on))
	}
	sort.Strings(gs)
	if len(gs) > 0 {
		env[EnvVarName("feature-gates")] = strings.Join(gs, ",")
	}
	return env
}
