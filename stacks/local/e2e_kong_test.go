//go:build e2e

package main

import (
	"fmt"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"microk8s-platform/infra/gateway"
)

// The sandbox's API server runs --authorization-mode Node,RBAC, so it can
// say what Kong's ServiceAccount really may do: everything the controllers
// we run need (gateway.Controllers, from KIC v3.4.4's RBAC markers), and
// none of what it must not. And each of those controllers' CRDs is
// Established, so their caches can sync. These are the two things whose
// absence makes KIC 3.4 time out and crash-loop.
func init() {
	registerAfterUp("kong-rbac-and-crds", func(t *testing.T, env e2eEnv) {
		user := fmt.Sprintf("system:serviceaccount:%s:kong", gateway.Namespace)
		groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + gateway.Namespace, "system:authenticated"}
		allowed := func(ns, group, resource, verb string) (bool, string) {
			t.Helper()
			res, sub, _ := strings.Cut(resource, "/")
			r, err := env.Kube.AuthorizationV1().SubjectAccessReviews().Create(env.Ctx, &authzv1.SubjectAccessReview{
				Spec: authzv1.SubjectAccessReviewSpec{
					User: user, Groups: groups,
					ResourceAttributes: &authzv1.ResourceAttributes{Namespace: ns, Group: group, Resource: res, Subresource: sub, Verb: verb},
				},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			return r.Status.Allowed, r.Status.Reason
		}

		// Needed: every verb of every running controller, in all
		// namespaces (ns "" asks for the cluster-wide grant KIC's
		// informers use) and in one namespace the app lives in.
		var checked int
		for _, c := range gateway.Controllers {
			if !c.Runs() {
				continue
			}
			for _, r := range append(c.Rules, gateway.ManagerRules...) {
				for _, g := range r.Groups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							for _, ns := range []string{"", "comments"} {
								checked++
								if ok, why := allowed(ns, g, res, v); !ok {
									t.Errorf("%s: %s may not %s %s/%s in %q (%s)", c.Name, user, v, g, res, ns, why)
								}
							}
						}
					}
				}
			}
		}
		if checked < 40 {
			t.Errorf("only %d access checks", checked)
		}

		// Refused: writes to Secrets and workloads, reads KIC 3.4 with
		// these controllers does not do, kinds of switched-off controllers.
		for _, d := range []struct{ ns, group, resource, verb string }{
			{"comments", "", "secrets", "create"},
			{"comments", "", "secrets", "update"},
			{"", "", "secrets", "delete"},
			{"comments", "", "secrets", "get"}, // the informer's list/watch suffice
			{"comments", "", "pods", "delete"},
			{"", "", "pods", "list"},
			{"", "", "endpoints", "list"},
			{"", "", "configmaps", "update"},
			{"comments", "apps", "deployments", "patch"},
			{gateway.Namespace, "coordination.k8s.io", "leases", "create"},
			{"", "apiextensions.k8s.io", "customresourcedefinitions", "list"},
			{"", "configuration.konghq.com", "kongconsumers", "list"},
			{"", "configuration.konghq.com", "kongplugins", "create"},
			{"", "gateway.networking.k8s.io", "httproutes", "list"},
			{"", "rbac.authorization.k8s.io", "clusterroles", "escalate"},
		} {
			if ok, _ := allowed(d.ns, d.group, d.resource, d.verb); ok {
				t.Errorf("%s may %s %s/%s in %q; it must not", user, d.verb, d.group, d.resource, d.ns)
			}
		}

		// Each running controller's CRD is there and Established.
		crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		for _, c := range gateway.Controllers {
			if !c.Runs() || c.CRDFile == "" {
				continue
			}
			want, err := gateway.LoadCRD(c.CRDFile)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.Dyn.Resource(crds).Get(env.Ctx, want.Name(), metav1.GetOptions{})
			if err != nil {
				t.Errorf("%s: CRD %s: %v", c.Name, want.Name(), err)
				continue
			}
			if s := kongCRDCondition(got, "Established"); s != "True" {
				t.Errorf("%s: CRD %s Established=%q", c.Name, want.Name(), s)
			}
			if v, _, _ := unstructured.NestedString(got.Object, "metadata", "annotations", "kubernetes-configuration.konghq.com/version"); v != "v1.3.0" {
				t.Errorf("CRD %s is not the upstream v1.3.0 one (annotation %q)", want.Name(), v)
			}
		}

		// The upstream schema is enforced: a KongPlugin with both config
		// and configFrom is refused (CEL rule in the v1.3.0 CRD).
		bad := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "configuration.konghq.com/v1", "kind": "KongPlugin",
			"metadata":   map[string]any{"name": "e2e-bad", "namespace": "comments"},
			"plugin":     "rate-limiting",
			"config":     map[string]any{"minute": 5},
			"configFrom": map[string]any{"secretKeyRef": map[string]any{"name": "x", "key": "y"}},
		}}
		kp := schema.GroupVersionResource{Group: "configuration.konghq.com", Version: "v1", Resource: "kongplugins"}
		if _, err := env.Dyn.Resource(kp).Namespace("comments").Create(env.Ctx, bad, metav1.CreateOptions{DryRun: []string{"All"}}); err == nil {
			t.Error("the API server accepted a KongPlugin with both config and configFrom: the CRD is not upstream's")
		}
	})
}

// kongCRDCondition is the status of the condition of type typ in obj's status.
func kongCRDCondition(obj *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			s, _ := m["status"].(string)
			return s
		}
	}
	return ""
}
