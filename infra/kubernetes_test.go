package infra

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/gateway"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/observability"
)

// The Kubernetes layer as the mocks saw it, for the assertions below.
type kubeObject struct {
	mt.Resource
	Kind, Name, Namespace string
	Labels                map[string]string
}

// clusterScoped are the kinds that live outside any namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "IngressClass": true, "KongClusterPlugin": true,
	"StorageClass": true, "PersistentVolume": true,
}

func kubeObjects(m *mt.Mocks) []kubeObject {
	var out []kubeObject
	for _, r := range m.Resources {
		if !strings.HasPrefix(r.Type, "kubernetes:") || strings.HasPrefix(r.Type, "pulumi:providers:") {
			continue
		}
		out = append(out, kubeObject{
			Resource:  r,
			Kind:      r.Type[strings.LastIndex(r.Type, ":")+1:],
			Name:      mt.Str(r.Inputs, "metadata.name"),
			Namespace: mt.Str(r.Inputs, "metadata.namespace"),
			Labels:    mt.StringMap(r.Inputs, "metadata.labels"),
		})
	}
	return out
}

func ofKind(objs []kubeObject, kind string) []kubeObject {
	var out []kubeObject
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func find(t *testing.T, objs []kubeObject, kind, ns, name string) kubeObject {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Namespace == ns && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s/%s", kind, ns, name)
	return kubeObject{}
}

// workload is a pod template's owner: its labels and container ports.
type workload struct {
	kubeObject
	PodLabels map[string]string
	Ports     map[string]bool // container port names
}

func podOwners(objs []kubeObject) []workload {
	var out []workload
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		w := workload{kubeObject: o, PodLabels: mt.StringMap(o.Inputs, "spec.template.metadata.labels"), Ports: map[string]bool{}}
		for _, c := range containers(o) {
			maps.Copy(w.Ports, portNames(c, "ports"))
		}
		out = append(out, w)
	}
	return out
}

// portNames are the names of the ports listed at path.
func portNames(pm resource.PropertyMap, path string) map[string]bool {
	out := map[string]bool{}
	if v := mt.Get(pm, path); v.IsArray() { // a sidecar may declare none
		for _, p := range v.ArrayValue() {
			out[mt.Str(p.ObjectValue(), "name")] = true
		}
	}
	return out
}

func containers(o kubeObject) []resource.PropertyMap {
	var out []resource.PropertyMap
	for _, c := range mt.Get(o.Inputs, "spec.template.spec.containers").ArrayValue() {
		out = append(out, mt.Unsecret(c).ObjectValue())
	}
	return out
}

// selects reports whether a label selector matches labels; an empty
// selector matches nothing here (we never mean "every pod" by accident).
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// selected returns the workloads in ns whose pods selector matches.
func selected(ws []workload, ns string, selector map[string]string) []workload {
	var out []workload
	for _, w := range ws {
		if w.Namespace == ns && selects(selector, w.PodLabels) {
			out = append(out, w)
		}
	}
	return out
}

var kubeStacks = []string{"dev", "prod", "local"}

func runStack(t *testing.T, stack string) (*mt.Mocks, *Outputs) {
	t.Helper()
	c := mt.StackFile(t, stack)
	if stack == "local" {
		return run(t, stack, localStack(t))
	}
	return run(t, stack, userKeys(c))
}

func TestKubernetesObjectsAreNamespacedAndLabelled(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			if len(objs) < 20 {
				t.Fatalf("only %d Kubernetes objects", len(objs))
			}
			ours := map[string]bool{}
			for _, ns := range ofKind(objs, "Namespace") {
				ours[ns.Name] = true
			}
			for _, want := range []string{app.Namespace, gateway.Namespace} {
				if !ours[want] {
					t.Errorf("namespace %s not declared (have %v)", want, ours)
				}
			}
			for _, o := range objs {
				id := o.Kind + " " + o.Name
				if o.Name == "" {
					t.Errorf("%s (%s) has no metadata.name", o.Type, o.URN)
				}
				switch {
				case clusterScoped[o.Kind] && o.Namespace != "":
					t.Errorf("%s is cluster-scoped but has namespace %q", id, o.Namespace)
				case !clusterScoped[o.Kind] && (o.Namespace == "" || o.Namespace == "default"):
					t.Errorf("%s is in namespace %q", id, o.Namespace)
				case !clusterScoped[o.Kind] && !ours[o.Namespace] && o.Namespace != observability.Namespace:
					// observability is the MicroK8s addon's namespace.
					t.Errorf("%s is in namespace %q, which nothing creates", id, o.Namespace)
				}
				for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"} {
					if o.Labels[k] == "" {
						t.Errorf("%s lacks label %s (has %v)", id, k, o.Labels)
					}
				}
				if o.Provider == "" || !strings.Contains(o.Provider, "pulumi:providers:kubernetes") {
					t.Errorf("%s is not on the platform's Kubernetes provider (provider %q)", id, o.Provider)
				}
			}
			// Objects in our namespaces wait for them.
			for _, o := range objs {
				if o.Namespace != "" && ours[o.Namespace] && !slices.Contains(o.Dependencies, nsURN(m, o.Namespace)) {
					t.Errorf("%s %s/%s does not depend on its Namespace", o.Kind, o.Namespace, o.Name)
				}
			}
		})
	}
}

func nsURN(m *mt.Mocks, name string) string {
	for _, r := range m.ByType("kubernetes:core/v1:Namespace") {
		if mt.Str(r.Inputs, "metadata.name") == name {
			return r.URN
		}
	}
	return ""
}

func TestWorkloadsArePinnedRestrictedAndProbed(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			ws := podOwners(kubeObjects(m))
			if len(ws) != 3 {
				t.Fatalf("want Kong, the service and PostgreSQL, got %d workloads", len(ws))
			}
			for _, w := range ws {
				id := w.Kind + " " + w.Namespace + "/" + w.Name
				if !selects(mt.StringMap(w.Inputs, "spec.selector.matchLabels"), w.PodLabels) {
					t.Errorf("%s: selector %v does not match its own pods %v", id, mt.StringMap(w.Inputs, "spec.selector.matchLabels"), w.PodLabels)
				}
				if _, ok := mt.StringMap(w.Inputs, "spec.selector.matchLabels")["app.kubernetes.io/version"]; ok {
					t.Errorf("%s: selector contains the version; a new tag would orphan its pods", id)
				}
				pod := "spec.template.spec.securityContext."
				if mt.Str(w.Inputs, pod+"runAsNonRoot") != "true" || mt.Str(w.Inputs, pod+"seccompProfile.type") != "RuntimeDefault" {
					t.Errorf("%s: pod security context %v", id, mt.Get(w.Inputs, "spec.template.spec.securityContext"))
				}
				if uid := mt.Str(w.Inputs, pod+"runAsUser"); uid == "" || uid == "0" {
					t.Errorf("%s: runAsUser %q", id, uid)
				}
				for _, c := range containers(w.kubeObject) {
					cid := id + " container " + mt.Str(c, "name")
					image := mt.Str(c, "image")
					repo, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
					if !ok || tag == "" || tag == "latest" || repo == "" {
						t.Errorf("%s: image %q is not pinned to a tag", cid, image)
					}
					sc := "securityContext."
					for path, want := range map[string]string{
						sc + "runAsNonRoot": "true", sc + "readOnlyRootFilesystem": "true",
						sc + "allowPrivilegeEscalation": "false", sc + "seccompProfile.type": "RuntimeDefault",
					} {
						if got := mt.Str(c, path); got != want {
							t.Errorf("%s: %s = %q, want %q", cid, path, got, want)
						}
					}
					if drop := mt.Strings(c, sc+"capabilities.drop"); !slices.Equal(drop, []string{"ALL"}) {
						t.Errorf("%s: capabilities.drop %v", cid, drop)
					}
					for _, probe := range []string{"livenessProbe", "readinessProbe"} {
						if mt.Get(c, probe).IsNull() {
							t.Errorf("%s: no %s", cid, probe)
						}
						if port := mt.Str(c, probe+".httpGet.port"); port != "" && !w.Ports[port] {
							t.Errorf("%s: %s on port %q, which no container declares", cid, probe, port)
						}
					}
					for _, r := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
						if mt.Str(c, "resources."+r) == "" {
							t.Errorf("%s: no resources.%s", cid, r)
						}
					}
				}
			}
		})
	}
}

func TestCommentsDeploymentFollowsTheStack(t *testing.T) {
	for stack, replicas := range map[string]string{"dev": "1", "prod": "2", "local": "1"} {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			d := find(t, objs, "Deployment", app.Namespace, app.ServiceName)
			if got := mt.Str(d.Inputs, "spec.replicas"); got != replicas {
				t.Errorf("replicas = %s, want %s", got, replicas)
			}
			cfg := mt.StackFile(t, stack).Values
			c := containers(d)[0]
			if want := wantAppImage(t, cfg); mt.Str(c, "image") != want {
				t.Errorf("image %s, want %s (built from service/, by digest)", mt.Str(c, "image"), want)
			}
			if mt.Str(c, "livenessProbe.httpGet.path") != "/healthz" || mt.Str(c, "readinessProbe.httpGet.path") != "/readyz" {
				t.Errorf("probes: liveness %s readiness %s", mt.Str(c, "livenessProbe.httpGet.path"), mt.Str(c, "readinessProbe.httpGet.path"))
			}
			if mt.Str(d.Inputs, "spec.strategy.rollingUpdate.maxUnavailable") != "0" {
				t.Errorf("maxUnavailable %q", mt.Str(d.Inputs, "spec.strategy.rollingUpdate.maxUnavailable"))
			}
			var dbURL resource.PropertyMap
			for _, e := range mt.Get(c, "env").ArrayValue() {
				if mt.Str(e.ObjectValue(), "name") == "DATABASE_URL" {
					dbURL = e.ObjectValue()
				}
			}
			if mt.Str(dbURL, "valueFrom.secretKeyRef.name") != app.SecretName || mt.Str(dbURL, "valueFrom.secretKeyRef.key") != "DATABASE_URL" {
				t.Errorf("DATABASE_URL does not come from Secret %s: %v", app.SecretName, dbURL)
			}
			secret := find(t, objs, "Secret", app.Namespace, app.SecretName)
			if mt.Str(secret.Inputs, "stringData.DATABASE_URL") == "" {
				t.Error("the Secret has no DATABASE_URL")
			}
			var pdbs []kubeObject // the service's; the database's is tested in database_test.go
			for _, pdb := range ofKind(objs, "PodDisruptionBudget") {
				if selects(mt.StringMap(pdb.Inputs, "spec.selector.matchLabels"), mt.StringMap(d.Inputs, "spec.template.metadata.labels")) {
					pdbs = append(pdbs, pdb)
				}
			}
			if replicas == "1" && len(pdbs) != 0 {
				t.Error("a PodDisruptionBudget for one replica would block node drains")
			}
			if replicas != "1" {
				if len(pdbs) != 1 || !selects(mt.StringMap(pdbs[0].Inputs, "spec.selector.matchLabels"), mt.StringMap(d.Inputs, "spec.template.metadata.labels")) {
					t.Fatalf("want one PodDisruptionBudget selecting the service's pods, got %d", len(pdbs))
				}
				if mt.Str(pdbs[0].Inputs, "spec.minAvailable") != "1" {
					t.Errorf("minAvailable %s", mt.Str(pdbs[0].Inputs, "spec.minAvailable"))
				}
			}
			db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
			if mt.Str(db.Inputs, "spec.serviceName") != app.DatabaseService {
				t.Errorf("StatefulSet serviceName %q", mt.Str(db.Inputs, "spec.serviceName"))
			}
			if want := cfg["microk8s-platform:dbStorageGiB"]; want != "" && mt.Str(db.Inputs, "spec.volumeClaimTemplates[0].spec.resources.requests.storage") != want+"Gi" {
				t.Errorf("database volume %s, want %sGi", mt.Str(db.Inputs, "spec.volumeClaimTemplates[0].spec.resources.requests.storage"), want)
			}
			onDisk := cfg["microk8s-platform:target"] == "aws" || cfg["microk8s-platform:target"] == "gcp"
			switch sc := mt.Str(db.Inputs, "spec.volumeClaimTemplates[0].spec.storageClassName"); {
			case onDisk && sc != app.DataClass:
				t.Errorf("database volume names storage class %q; on a VM it is the data disk's, %s", sc, app.DataClass)
			case !onDisk && sc != "" && cfg["microk8s-platform:dbReclaimPolicy"] != "Retain":
				t.Errorf("database volume names storage class %q; it should use the cluster's default", sc)
			}
		})
	}
}

func TestServicesSelectTheirPods(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	ws := podOwners(objs)
	services := ofKind(objs, "Service")
	if len(services) != 4 {
		t.Fatalf("want 4 Services (kong-proxy, kong-status, comments, postgres), got %d", len(services))
	}
	for _, s := range services {
		id := s.Namespace + "/" + s.Name
		pods := selected(ws, s.Namespace, mt.StringMap(s.Inputs, "spec.selector"))
		if len(pods) != 1 {
			t.Errorf("Service %s selects %d workloads", id, len(pods))
			continue
		}
		for _, p := range mt.Get(s.Inputs, "spec.ports").ArrayValue() {
			if tp := mt.Str(p.ObjectValue(), "targetPort"); !pods[0].Ports[tp] {
				t.Errorf("Service %s targets port %q; %s declares %v", id, tp, pods[0].Name, pods[0].Ports)
			}
		}
	}
	if got := mt.Str(find(t, objs, "Service", app.Namespace, app.DatabaseService).Inputs, "spec.clusterIP"); got != "None" {
		t.Errorf("database Service is not headless: clusterIP %q", got)
	}
}

func TestServiceMonitorsScrapeRealPorts(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	monitors := ofKind(objs, "ServiceMonitor")
	if len(monitors) != 2 {
		t.Fatalf("want ServiceMonitors for the service and Kong, got %d", len(monitors))
	}
	for _, sm := range monitors {
		id := sm.Namespace + "/" + sm.Name
		if sm.Labels[observability.ReleaseLabel] != observability.ReleaseValue {
			t.Errorf("ServiceMonitor %s lacks %s=%s: kube-prometheus-stack would ignore it", id, observability.ReleaseLabel, observability.ReleaseValue)
		}
		sel := mt.StringMap(sm.Inputs, "spec.selector.matchLabels")
		nss := mt.Strings(sm.Inputs, "spec.namespaceSelector.matchNames")
		var matched []kubeObject
		for _, s := range ofKind(objs, "Service") {
			if slices.Contains(nss, s.Namespace) && selects(sel, s.Labels) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services, want 1", id, len(matched))
			continue
		}
		ports := portNames(matched[0].Inputs, "spec.ports")
		for _, ep := range mt.Get(sm.Inputs, "spec.endpoints").ArrayValue() {
			if port := mt.Str(ep.ObjectValue(), "port"); !ports[port] {
				t.Errorf("ServiceMonitor %s scrapes port %q of Service %s, which has %v", id, port, matched[0].Name, ports)
			}
			if mt.Str(ep.ObjectValue(), "path") != "/metrics" {
				t.Errorf("ServiceMonitor %s path %q", id, mt.Str(ep.ObjectValue(), "path"))
			}
		}
	}
	rules := ofKind(objs, "PrometheusRule")
	if len(rules) != 1 || rules[0].Labels[observability.ReleaseLabel] != observability.ReleaseValue {
		t.Fatalf("want one PrometheusRule labelled for the release, got %d", len(rules))
	}
	if n := len(mt.Get(rules[0].Inputs, "spec.groups[0].rules").ArrayValue()); n != len(observability.Alerts()) {
		t.Errorf("PrometheusRule has %d rules, want %d", n, len(observability.Alerts()))
	}
	dash := ofKind(objs, "ConfigMap")
	if len(dash) != len(observability.Dashboards()) {
		t.Errorf("%d dashboard ConfigMaps, want %d", len(dash), len(observability.Dashboards()))
	}
	for _, d := range dash {
		if d.Labels[observability.DashboardLabel] != "1" || d.Namespace != observability.Namespace {
			t.Errorf("dashboard %s/%s labels %v: Grafana's sidecar would not load it", d.Namespace, d.Name, d.Labels)
		}
	}
}

func TestNetworkPoliciesAdmitTheRightPeers(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	ws := podOwners(objs)
	api := find(t, objs, "Deployment", app.Namespace, app.ServiceName)
	db := find(t, objs, "StatefulSet", app.Namespace, app.DatabaseService)
	policies := map[string]kubeObject{}
	for _, np := range ofKind(objs, "NetworkPolicy") {
		if np.Namespace == app.Namespace { // kong's: netpol_table_test.go
			policies[np.Name] = np
		}
	}
	deny, ok := policies["default-deny"]
	if !ok || len(mt.StringMap(deny.Inputs, "spec.podSelector.matchLabels")) != 0 || !mt.Get(deny.Inputs, "spec.ingress").IsNull() {
		t.Fatalf("no default-deny policy for every pod in %s: %v", app.Namespace, slices.Collect(maps.Keys(policies)))
	}

	// who admits whom: policy -> (pods it protects, namespaces / pods it admits, ports)
	type admits struct {
		target     string
		namespaces []string
		pods       []string
		ports      []string
	}
	got := map[string]admits{}
	for name, np := range policies {
		if name == deny.Name || mt.Get(np.Inputs, "spec.ingress").IsNull() {
			continue // egress: netpol_table_test.go
		}
		targets := selected(ws, np.Namespace, mt.StringMap(np.Inputs, "spec.podSelector.matchLabels"))
		if len(targets) != 1 {
			t.Errorf("NetworkPolicy %s protects %d workloads", name, len(targets))
			continue
		}
		a := admits{target: targets[0].Name}
		for _, rule := range mt.Get(np.Inputs, "spec.ingress").ArrayValue() {
			for _, peer := range mt.Get(rule.ObjectValue(), "from").ArrayValue() {
				if ns := mt.StringMap(peer.ObjectValue(), "namespaceSelector.matchLabels")["kubernetes.io/metadata.name"]; ns != "" {
					a.namespaces = append(a.namespaces, ns)
				}
				for _, w := range selected(ws, np.Namespace, mt.StringMap(peer.ObjectValue(), "podSelector.matchLabels")) {
					a.pods = append(a.pods, w.Name)
				}
			}
			for _, p := range mt.Get(rule.ObjectValue(), "ports").ArrayValue() {
				port := mt.Str(p.ObjectValue(), "port")
				if !targets[0].Ports[port] {
					t.Errorf("NetworkPolicy %s opens port %q, which %s does not declare", name, port, targets[0].Name)
				}
				a.ports = append(a.ports, port)
			}
		}
		got[a.target] = a
	}
	want := map[string]admits{
		api.Name: {target: api.Name, namespaces: []string{gateway.Namespace, observability.Namespace}, ports: []string{"http"}},
		db.Name:  {target: db.Name, pods: []string{api.Name}, ports: []string{"postgres"}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("NetworkPolicies admit\n%v\nwant\n%v", got, want)
	}
}

func TestIngressIsServedByKongWithExistingPlugins(t *testing.T) {
	for _, stack := range []string{"dev", "local"} {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			objs := kubeObjects(m)
			ings := ofKind(objs, "Ingress")
			if len(ings) != 1 {
				t.Fatalf("%d Ingresses", len(ings))
			}
			ing := ings[0]
			class := mt.Str(ing.Inputs, "spec.ingressClassName")
			if len(ofKind(objs, "IngressClass")) != 1 || ofKind(objs, "IngressClass")[0].Name != class || class != gateway.IngressClass {
				t.Errorf("Ingress class %q is not the declared IngressClass", class)
			}
			ann := mt.StringMap(ing.Inputs, "metadata.annotations")
			plugins := strings.Split(ann["konghq.com/plugins"], ",")
			for _, p := range plugins {
				p = strings.TrimSpace(p)
				var found bool
				for _, kp := range ofKind(objs, "KongPlugin") {
					found = found || (kp.Name == p && kp.Namespace == ing.Namespace)
				}
				if !found {
					t.Errorf("Ingress names plugin %q, but no KongPlugin %s/%s exists", p, ing.Namespace, p)
				}
			}
			rl := find(t, objs, "KongPlugin", app.Namespace, app.RateLimitPlugin)
			if mt.Str(rl.Inputs, "plugin") != "rate-limiting" || mt.Str(rl.Inputs, "config.minute") != mt.StackFile(t, stack).Values["microk8s-platform:rateLimitPerMinute"] {
				t.Errorf("rate limit plugin %v", rl.Inputs)
			}
			prom := find(t, objs, "KongClusterPlugin", "", gateway.PrometheusPlugin)
			if prom.Labels["global"] != "true" || mt.Str(prom.Inputs, "config.status_code_metrics") != "true" || mt.Str(prom.Inputs, "config.latency_metrics") != "true" {
				t.Errorf("prometheus plugin is not global with detailed metrics: %v", prom.Inputs)
			}
			// Kong CRs wait for their CRDs.
			for _, kind := range []string{"KongPlugin", "KongClusterPlugin"} {
				for _, o := range ofKind(objs, kind) {
					if !dependsOnKind(o.Resource, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition") {
						t.Errorf("%s %s does not wait for its CRD", kind, o.Name)
					}
				}
			}
			backend := "spec.rules[0].http.paths[0].backend.service."
			svc := find(t, objs, "Service", ing.Namespace, mt.Str(ing.Inputs, backend+"name"))
			if !portNames(svc.Inputs, "spec.ports")[mt.Str(ing.Inputs, backend+"port.name")] || mt.Str(ing.Inputs, "spec.rules[0].http.paths[0].path") != app.IngressPathPrefix {
				t.Errorf("Ingress backend %v does not reach a port of Service %s", mt.Get(ing.Inputs, backend), svc.Name)
			}
			_, skip := ann["pulumi.com/skipAwait"]
			proxy := find(t, objs, "Service", gateway.Namespace, gateway.ProxyService)
			lb := mt.Str(proxy.Inputs, "spec.type") == "LoadBalancer"
			if skip == lb {
				t.Errorf("proxy Service %s but skipAwait=%v: an Ingress without a load-balancer address would never become ready", mt.Str(proxy.Inputs, "spec.type"), skip)
			}
		})
	}
}

func dependsOnKind(r mt.Resource, token string) bool {
	for _, d := range r.Dependencies {
		if strings.Contains(d, "::"+token+"::") || strings.Contains(d, "$"+token+"::") {
			return true
		}
	}
	return false
}

func TestKongControllerRBACIsLeastPrivilege(t *testing.T) {
	m, _ := runStack(t, "dev")
	objs := kubeObjects(m)
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, role := range ofKind(objs, kind) {
			for _, rule := range mt.Get(role.Inputs, "rules").ArrayValue() {
				r := rule.ObjectValue()
				all := append(append(mt.Strings(r, "apiGroups"), mt.Strings(r, "resources")...), mt.Strings(r, "verbs")...)
				if slices.Contains(all, "*") {
					t.Errorf("%s %s grants a wildcard: %v", kind, role.Name, r)
				}
				if slices.Contains(mt.Strings(r, "resources"), "secrets") && slices.ContainsFunc(mt.Strings(r, "verbs"), func(v string) bool {
					return v != "get" && v != "list" && v != "watch"
				}) {
					t.Errorf("%s %s may write Secrets", kind, role.Name)
				}
			}
		}
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, b := range ofKind(objs, kind) {
			subj := mt.Get(b.Inputs, "subjects[0]").ObjectValue()
			if mt.Str(subj, "name") != "kong" || mt.Str(subj, "namespace") != gateway.Namespace {
				t.Errorf("%s %s binds %v", kind, b.Name, subj)
			}
		}
	}
	d := find(t, objs, "Deployment", gateway.Namespace, "kong")
	if mt.Str(d.Inputs, "spec.template.spec.serviceAccountName") != "kong" {
		t.Errorf("Kong runs as service account %q", mt.Str(d.Inputs, "spec.template.spec.serviceAccountName"))
	}
}

func TestDatabasePasswordStaysSecret(t *testing.T) {
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			secret := find(t, kubeObjects(m), "Secret", app.Namespace, app.SecretName)
			for _, k := range []string{app.KeyAppPassword, app.KeyDatabaseURL} {
				if !mt.IsSecret(secret.Inputs, "stringData."+k) {
					t.Errorf("Secret key %s is not a Pulumi secret: it would be stored in plain text in the state", k)
				}
			}
			if !strings.Contains(mt.Str(secret.Inputs, "stringData.DATABASE_URL"), dbPass) {
				t.Error("DATABASE_URL does not carry the configured password")
			}
			// Nowhere else in plain text.
			for _, r := range m.Resources {
				for _, leak := range plainStrings(resource.NewObjectProperty(r.Inputs)) {
					if strings.Contains(leak, dbPass) {
						t.Errorf("%s %s has the password in a non-secret input", r.Type, r.Name)
					}
				}
			}
		})
	}
}

// plainStrings returns the strings in v that are not inside a secret.
func plainStrings(v resource.PropertyValue) []string {
	switch {
	case v.IsSecret():
		return nil
	case v.IsString():
		return []string{v.StringValue()}
	case v.IsArray():
		var out []string
		for _, e := range v.ArrayValue() {
			out = append(out, plainStrings(e)...)
		}
		return out
	case v.IsObject():
		var out []string
		for _, e := range v.ObjectValue() {
			out = append(out, plainStrings(e)...)
		}
		return out
	}
	return nil
}

func TestLocalStackUsesAnExistingCluster(t *testing.T) {
	m, out := runStack(t, "local")
	for _, r := range m.Resources {
		if strings.HasPrefix(r.Type, "aws:") || strings.HasPrefix(r.Type, "gcp:") || strings.HasPrefix(r.Type, "command:") {
			t.Errorf("local stack declares %s %s", r.Type, r.Name)
		}
	}
	objs := kubeObjects(m)
	if n := len(ofKind(objs, "ServiceMonitor")) + len(ofKind(objs, "PrometheusRule")) + len(ofKind(objs, "ConfigMap")); n != 0 {
		t.Errorf("observability is off for local, yet %d monitoring objects are declared", n)
	}
	if got := mt.Str(find(t, objs, "Service", gateway.Namespace, gateway.ProxyService).Inputs, "spec.type"); got != "NodePort" {
		t.Errorf("proxy Service type %s on a cluster without a load balancer", got)
	}
	providers := m.ByType("pulumi:providers:kubernetes")
	if len(providers) != 1 || providers[0].Name != "existing-cluster" {
		t.Fatalf("want the existing-cluster provider, got %v", providers)
	}
	url, _ := awaitString(t, out.AppURL)
	if !strings.Contains(url, "port-forward svc/"+gateway.ProxyService) {
		t.Errorf("appUrl %q does not say how to reach Kong without a load balancer", url)
	}
	g, _ := awaitString(t, out.Grafana)
	if !strings.Contains(g, "observability is off") {
		t.Errorf("grafana output %q", g)
	}
}
