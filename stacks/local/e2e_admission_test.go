//go:build e2e

package main

import (
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/gateway"
	"microk8s-platform/infra/kube"
)

// Pod Security admission, enforced by the sandbox's real kube-apiserver
// (its PodSecurity admission plugin is on by default since Kubernetes
// 1.25; kubernetes.io/docs/concepts/security/pod-security-admission/):
// every namespace of ours carries the restricted level at the pinned
// version, the API server admits our pods there, and refuses, in each, a
// pod that breaks the level, while the same pod passes in a namespace
// without the labels (so the labels, not something else, refuse it).
func init() {
	registerAfterUp("pod security admission", func(t *testing.T, env e2eEnv) {
		warnings := &warningRecorder{}
		cfg := rest.CopyConfig(env.Rest)
		cfg.WarningHandler = warnings
		kc := kubernetes.NewForConfigOrDie(cfg)
		want := kube.PodSecurityLabels(kube.PodSecurityRestricted)
		level := kube.PodSecurityRestricted + ":" + kube.PodSecurityVersion // how the plugin names the policy

		for _, ns := range []string{gateway.Namespace, app.Namespace} {
			t.Run(ns, func(t *testing.T) {
				got, err := kc.CoreV1().Namespaces().Get(env.Ctx, ns, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range want {
					if got.Labels[k] != v {
						t.Errorf("namespace %s: label %s=%q, want %q", ns, k, got.Labels[k], v)
					}
				}

				// Our pods were admitted: every workload has its pods, and
				// its pod template passes a server-side dry run without a
				// PodSecurity warning.
				templates := map[string]corev1.PodTemplateSpec{}
				selectors := map[string]*metav1.LabelSelector{}
				deps, err := kc.AppsV1().Deployments(ns).List(env.Ctx, metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range deps.Items {
					templates["deployment/"+d.Name], selectors["deployment/"+d.Name] = d.Spec.Template, d.Spec.Selector
				}
				sts, err := kc.AppsV1().StatefulSets(ns).List(env.Ctx, metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range sts.Items {
					// The StatefulSet controller adds a volume per claim
					// template (claim <template>-<set>-<ordinal>); so does
					// this copy of its pod 0.
					tmpl := *s.Spec.Template.DeepCopy()
					for _, c := range s.Spec.VolumeClaimTemplates {
						tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
							PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-" + s.Name + "-0"},
						}})
					}
					templates["statefulset/"+s.Name], selectors["statefulset/"+s.Name] = tmpl, s.Spec.Selector
				}
				if len(templates) == 0 {
					t.Fatalf("no workloads in %s", ns)
				}
				for name, tmpl := range templates {
					sel, err := metav1.LabelSelectorAsSelector(selectors[name])
					if err != nil {
						t.Fatal(err)
					}
					if n := podsMatching(t, env, kc, ns, sel); n == 0 {
						t.Errorf("%s/%s has no pods: the API server did not admit them", ns, name)
					}
					pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-check-", Labels: tmpl.Labels}, Spec: tmpl.Spec}
					warnings.reset()
					if _, err := kc.CoreV1().Pods(ns).Create(env.Ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
						t.Errorf("%s/%s: its pod template is refused: %v", ns, name, err)
					}
					if w := warnings.get(); len(w) > 0 {
						t.Errorf("%s/%s: PodSecurity warnings on its pod template: %v", ns, name, w)
					}
				}

				// A pod that breaks "restricted" is refused, by PodSecurity.
				_, err = kc.CoreV1().Pods(ns).Create(env.Ctx, rootPod(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "`+level+`"`) {
					t.Fatalf("a privileged root pod in %s: got %v, want Forbidden: violates PodSecurity %q", ns, err, level)
				}
				for _, broken := range []string{"privileged", "runAsNonRoot", "allowPrivilegeEscalation", "capabilities", "seccompProfile"} {
					if !strings.Contains(err.Error(), broken) {
						t.Errorf("the refusal does not name %s: %v", broken, err)
					}
				}
				t.Logf("%s refuses a privileged root pod: %v", ns, err)
			})
		}

		// The control: the same pod passes where no level is asked for, so
		// it is our labels that refuse it.
		if _, err := kc.CoreV1().Pods("default").Create(env.Ctx, rootPod(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("the privileged root pod is refused in default too, so the test proves nothing about our labels: %v", err)
		}
	})
}

// rootPod breaks "restricted" (and "baseline") every way a careless
// change would: privileged, root, privilege escalation, an added
// capability, no seccomp profile.
func rootPod() *corev1.Pod {
	yes, root := true, int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "root-"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "root",
			Image: "busybox:1.37",
			SecurityContext: &corev1.SecurityContext{
				Privileged:               &yes,
				RunAsUser:                &root,
				AllowPrivilegeEscalation: &yes,
				Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}},
			},
		}}},
	}
}

// podsMatching waits up to a minute for the controllers to create pods
// matching sel (they do right after up; the wait covers a slow sandbox).
func podsMatching(t *testing.T, env e2eEnv, kc kubernetes.Interface, ns string, sel labels.Selector) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := kc.CoreV1().Pods(ns).List(env.Ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 || time.Now().After(deadline) {
			return len(pods.Items)
		}
		time.Sleep(2 * time.Second)
	}
}

// warningRecorder keeps the API server's PodSecurity warnings (the warn
// mode answers a violation with a Warning header).
type warningRecorder struct {
	mu sync.Mutex
	w  []string
}

func (r *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Contains(text, "PodSecurity") {
		r.w = append(r.w, text)
	}
}

func (r *warningRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w = nil
}

func (r *warningRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.w...)
}
