//go:build e2e

// The end-to-end test: the real Pulumi engine and Kubernetes provider
// deploy the platform's Kubernetes layer to a real API server (the
// sandbox, `make e2e`), and client-go checks what arrived.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"microk8s-platform/internal/repo"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// e2eEnv is what a check run after the first up gets: the live stack and
// clients for the sandbox's API server.
type e2eEnv struct {
	Ctx   context.Context
	Stack auto.Stack
	Rest  *rest.Config
	Kube  kubernetes.Interface
	Dyn   dynamic.Interface
}

// afterUp holds checks that run, as subtests, right after the first up.
// Each topic registers its own from an init in its own e2e_*_test.go file.
var afterUp []struct {
	Name  string
	Check func(t *testing.T, env e2eEnv)
}

func registerAfterUp(name string, check func(t *testing.T, env e2eEnv)) {
	afterUp = append(afterUp, struct {
		Name  string
		Check func(t *testing.T, env e2eEnv)
	}{name, check})
}

func TestLocalStackEndToEnd(t *testing.T) {
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		t.Fatal("KUBECONFIG is not set: run `make e2e`, which starts the sandbox")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o := Options{Root: root, Kubeconfig: kubeconfig, BackendDir: t.TempDir(), Out: logWriter{t}, ServeRegistry: e2eRegistry}
	st, err := Stack(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(restCfg)
	dyn := dynamic.NewForConfigOrDie(restCfg)
	var timings []string
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		timings = append(timings, fmt.Sprintf("%-14s %s", what, time.Since(start).Round(100*time.Millisecond)))
	}
	defer func() {
		fmt.Printf("e2e timings (sandbox, %s):\n  %s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(timings, "\n  "))
	}()
	cleanup := true
	defer func() {
		if cleanup {
			_, _ = st.Destroy(ctx, optdestroy.ProgressStreams(logWriter{t}))
		}
	}()

	// 1. up: every object exists with the spec we declared, and the
	// workloads are available.
	var up auto.UpResult
	timed("first up", func() (err error) { up, err = st.Up(ctx, optup.ProgressStreams(logWriter{t})); return err })
	if n := up.Summary.ResourceChanges; n == nil || (*n)["create"] < 25 {
		t.Errorf("first up created %v", n)
	}
	for _, ns := range []string{"kong", "comments"} {
		got, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || got.Labels["app.kubernetes.io/part-of"] != "microk8s-platform" {
			t.Errorf("namespace %s: %v %v", ns, err, got.Labels)
		}
	}
	deploy := func(ns, name string) *appsv1.Deployment {
		d, err := kc.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("deployment %s/%s: %v", ns, name, err)
		}
		return d
	}
	available := func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == *d.Spec.Replicas && d.Status.UpdatedReplicas == *d.Spec.Replicas
	}
	for _, d := range []*appsv1.Deployment{deploy("kong", "kong"), deploy("comments", "comments")} {
		if !available(d) {
			t.Errorf("deployment %s/%s not available after up: %+v", d.Namespace, d.Name, d.Status)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s container %s: image %s, security context %+v", d.Name, c.Name, c.Image, sc)
			}
		}
	}
	app := deploy("comments", "comments")
	if *app.Spec.Replicas != 1 { // its image: e2e_image_test.go
		t.Errorf("comments deployment: replicas %d image %s", *app.Spec.Replicas, app.Spec.Template.Spec.Containers[0].Image)
	}
	if db, err := kc.AppsV1().StatefulSets("comments").Get(ctx, "postgres", metav1.GetOptions{}); err != nil || db.Status.ReadyReplicas != 1 {
		t.Errorf("postgres statefulset: %v ready %d", err, db.Status.ReadyReplicas)
	}
	if svc, err := kc.CoreV1().Services("kong").Get(ctx, "kong-proxy", metav1.GetOptions{}); err != nil || svc.Spec.Type != "NodePort" {
		t.Errorf("kong-proxy service: %v", err)
	}
	if ing, err := kc.NetworkingV1().Ingresses("comments").Get(ctx, "comments", metav1.GetOptions{}); err != nil || *ing.Spec.IngressClassName != "kong" || ing.Annotations["konghq.com/plugins"] != "comments-rate-limit" {
		t.Errorf("ingress: %v", err)
	}
	if sec, err := kc.CoreV1().Secrets("comments").Get(ctx, "comments-db", metav1.GetOptions{}); err != nil || !strings.HasPrefix(string(sec.Data["DATABASE_URL"]), "postgres://comments:") {
		t.Errorf("secret comments-db: %v", err)
	}
	plugin, err := dyn.Resource(schema.GroupVersionResource{Group: "configuration.konghq.com", Version: "v1", Resource: "kongplugins"}).
		Namespace("comments").Get(ctx, "comments-rate-limit", metav1.GetOptions{})
	if err != nil || plugin.Object["plugin"] != "rate-limiting" {
		t.Errorf("KongPlugin comments-rate-limit: %v %v", err, plugin)
	}
	for ns, want := range map[string]int{"comments": 4, "kong": 4} {
		if nps, err := kc.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{}); err != nil || len(nps.Items) != want {
			t.Errorf("network policies in %s: %v, want %d", ns, err, want)
		}
	}

	env := e2eEnv{Ctx: ctx, Stack: st, Rest: restCfg, Kube: kc, Dyn: dyn}
	for _, c := range afterUp {
		t.Run(c.Name, func(t *testing.T) { c.Check(t, env) })
	}

	// 2. a preview right after reports no changes, and so does an up.
	pre, err := st.Preview(ctx, optpreview.ProgressStreams(logWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	if changed := changes(pre.ChangeSummary); len(changed) > 0 {
		t.Errorf("preview after up wants changes: %v", changed)
	}
	timed("no-op up", func() (err error) { up, err = st.Up(ctx, optup.ProgressStreams(logWriter{t})); return err })
	if changed := changes(*up.Summary.ResourceChanges); len(changed) > 0 {
		t.Errorf("second up changed %v", changed)
	}

	// 3. one config value changes one object (and, at two replicas, adds
	// the PodDisruptionBudget that only exists for more than one).
	if err := st.SetConfig(ctx, project+":appReplicas", auto.ConfigValue{Value: "2"}); err != nil {
		t.Fatal(err)
	}
	timed("replicas 1->2", func() (err error) { up, err = st.Up(ctx, optup.ProgressStreams(logWriter{t})); return err })
	if changed := changes(*up.Summary.ResourceChanges); fmt.Sprint(changed) != "map[create:1 update:1]" {
		t.Errorf("replicas change did %v, want one update (the Deployment) and one create (its PDB)", changed)
	}
	if app := deploy("comments", "comments"); *app.Spec.Replicas != 2 || !available(app) {
		t.Errorf("comments deployment after scaling: replicas %d, status %+v", *app.Spec.Replicas, app.Status)
	}
	if _, err := kc.PolicyV1().PodDisruptionBudgets("comments").Get(ctx, "comments", metav1.GetOptions{}); err != nil {
		t.Errorf("pdb: %v", err)
	}

	// 4. destroy leaves none of our objects.
	cleanup = false
	timed("destroy", func() error { _, err := st.Destroy(ctx, optdestroy.ProgressStreams(logWriter{t})); return err })
	for _, ns := range []string{"kong", "comments"} {
		if got, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s still there after destroy (phase %v)", ns, got.Status.Phase)
		}
	}
	if _, err := kc.NetworkingV1().IngressClasses().Get(ctx, "kong", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ingress class kong after destroy: %v", err)
	}
	if _, err := kc.RbacV1().ClusterRoles().Get(ctx, "kong-ingress-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster role after destroy: %v", err)
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	list, err := dyn.Resource(crds).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		if strings.HasSuffix(c.GetName(), "konghq.com") {
			t.Errorf("CRD %s still there after destroy", c.GetName())
		}
	}
}

// changes drops the "same" count from an operation summary.
func changes[K ~string](summary map[K]int) map[string]int {
	out := map[string]int{}
	for op, n := range summary {
		if op != "same" && n > 0 {
			out[string(op)] = n
		}
	}
	return out
}
