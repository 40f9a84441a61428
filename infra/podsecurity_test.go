package infra

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"

	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/kube"
	"microk8s-platform/internal/repo"
)

// TestOurNamespacesEnforceRestrictedPodSecurity: every namespace the
// program creates asks the API server's PodSecurity admission to enforce
// (and warn and audit) "restricted" at the pinned version
// (kubernetes.io/docs/concepts/security/pod-security-admission/: the
// pod-security.kubernetes.io/<mode> and <mode>-version labels). The sandbox
// e2e (stacks/local/e2e_admission_test.go) shows the API server acting on
// them.
func TestOurNamespacesEnforceRestrictedPodSecurity(t *testing.T) {
	want := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		want["pod-security.kubernetes.io/"+mode] = "restricted"
		want["pod-security.kubernetes.io/"+mode+"-version"] = kube.PodSecurityVersion
	}
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			nss := ofKind(kubeObjects(m), "Namespace")
			if len(nss) < 2 {
				t.Fatalf("%d namespaces", len(nss))
			}
			for _, ns := range nss {
				for k, v := range want {
					if ns.Labels[k] != v {
						t.Errorf("namespace %s: %s=%q, want %q", ns.Name, k, ns.Labels[k], v)
					}
				}
			}
		})
	}
}

// TestPodSecurityVersionIsTheSandboxAPIServers: the pinned policy version
// is the minor of the kube-apiserver the sandbox builds
// (scripts/tools/kube/go.mod pins k8s.io/api to v0.<minor>.x, the staging
// release of Kubernetes 1.<minor>), so the e2e tests the very policy
// definition we pin.
func TestPodSecurityVersionIsTheSandboxAPIServers(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "scripts", "tools", "kube", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`k8s\.io/api => k8s\.io/api v0\.(\d+)\.\d+`).FindSubmatch(b)
	if m == nil {
		t.Fatal("scripts/tools/kube/go.mod does not pin k8s.io/api")
	}
	if got := "v1." + string(m[1]); got != kube.PodSecurityVersion {
		t.Errorf("the sandbox's kube-apiserver is %s; PodSecurityVersion is %s", got, kube.PodSecurityVersion)
	}
}

// TestOurPodsMeetRestrictedAtThePinnedVersion runs every pod template the
// program declares through the checks kube-apiserver's PodSecurity
// admission runs (k8s.io/pod-security-admission v0.35.4, policy
// DefaultChecks at restricted:v1.35), so a template that breaks the level
// fails here, before a deploy fails on the cluster. A version newer than
// an API server knows is evaluated as its latest (policy/registry.go,
// EvaluatePod: "if r.maxVersion.Older(lv.Version)"), so v1.35 is also the
// strictest rule set an older MicroK8s applies.
func TestOurPodsMeetRestrictedAtThePinnedVersion(t *testing.T) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := psaapi.ParseVersion(kube.PodSecurityVersion)
	if err != nil {
		t.Fatal(err)
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: v}
	check := func(tmpl *corev1.PodTemplateSpec) psapolicy.AggregateCheckResult {
		return psapolicy.AggregateCheckResults(eval.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec))
	}
	for _, stack := range kubeStacks {
		t.Run(stack, func(t *testing.T) {
			m, _ := runStack(t, stack)
			owners := podOwners(kubeObjects(m))
			if len(owners) < 3 {
				t.Fatalf("%d workloads", len(owners))
			}
			for _, w := range owners {
				b, err := json.Marshal(plain(mt.Get(w.Inputs, "spec.template")))
				if err != nil {
					t.Fatal(err)
				}
				tmpl := &corev1.PodTemplateSpec{}
				if err := json.Unmarshal(b, tmpl); err != nil {
					t.Fatalf("%s/%s template: %v", w.Namespace, w.Name, err)
				}
				if res := check(tmpl); !res.Allowed {
					t.Errorf("%s/%s violates PodSecurity %q: %s: %s", w.Namespace, w.Name, kube.PodSecurityRestricted+":"+kube.PodSecurityVersion, res.ForbiddenReason(), res.ForbiddenDetail())
				}
				// The checks have teeth: the same template with one
				// container allowed to escalate privileges is refused.
				bad := tmpl.DeepCopy()
				yes := true
				bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
				if res := check(bad); res.Allowed || !strings.Contains(res.ForbiddenReason(), "allowPrivilegeEscalation") {
					t.Errorf("%s/%s with allowPrivilegeEscalation=true passes restricted: %+v", w.Namespace, w.Name, res)
				}
			}
		})
	}
}
