package infra

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

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
