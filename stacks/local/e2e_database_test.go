//go:build e2e

package main

import (
	"context"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"microk8s-platform/infra/app"
)

// The database tier as the sandbox's real API server stores and enforces it
// (issue 15).
func init() {
	// The StatefulSet's PVC retention policy is a field the API server drops
	// silently when its feature gate is off; read it back as stored. The
	// containers and their Secret keys are checked as stored too.
	registerAfterUp("database: stored StatefulSet and Deployment", func(t *testing.T, env e2eEnv) {
		ctx := env.Ctx
		sts, err := env.Kube.AppsV1().StatefulSets(app.Namespace).Get(ctx, app.DatabaseService, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p := sts.Spec.PersistentVolumeClaimRetentionPolicy
		if p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
			t.Errorf("stored PVC retention policy %+v, want Retain/Retain", p)
		}
		var names []string
		for _, c := range sts.Spec.Template.Spec.Containers {
			names = append(names, c.Name)
			if len(c.EnvFrom) != 0 {
				t.Errorf("container %s takes the whole Secret (envFrom)", c.Name)
			}
			if c.Image != app.PostgresImage {
				t.Errorf("container %s runs %s, want %s", c.Name, c.Image, app.PostgresImage)
			}
		}
		if !slices.Equal(names, []string{"postgres", "roles"}) {
			t.Errorf("database containers %v", names)
		}
		if pg := sts.Spec.Template.Spec.Containers[0]; pg.StartupProbe == nil || pg.LivenessProbe == nil || pg.ReadinessProbe == nil {
			t.Error("postgres lacks a start-up, liveness or readiness probe")
		}
		d, err := env.Kube.AppsV1().Deployments(app.Namespace).Get(ctx, app.ServiceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Spec.Template.Annotations[app.CredentialsAnnotation] == "" {
			t.Errorf("the service's pod template has no %s", app.CredentialsAnnotation)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key != app.KeyDatabaseURL {
					t.Errorf("the service reads Secret key %s", e.ValueFrom.SecretKeyRef.Key)
				}
			}
		}
	})

	// A drain of the single node must be able to evict PostgreSQL: the
	// disruption controller computes the budget's status and the eviction
	// API (here a dry run, so nothing moves) answers 201, not 429.
	registerAfterUp("database: a drain may evict PostgreSQL", func(t *testing.T, env e2eEnv) {
		ctx, cancel := context.WithTimeout(env.Ctx, 2*time.Minute)
		defer cancel()
		pdbs := env.Kube.PolicyV1().PodDisruptionBudgets(app.Namespace)
		for {
			pdb, err := pdbs.Get(ctx, app.DatabaseService, metav1.GetOptions{})
			if err == nil && pdb.Status.ObservedGeneration >= pdb.Generation && pdb.Status.ExpectedPods >= 1 {
				if pdb.Status.DisruptionsAllowed < 1 && pdb.Status.CurrentHealthy >= 1 {
					t.Fatalf("PodDisruptionBudget %s allows %d disruptions with %d healthy pod(s): a drain would hang", pdb.Name, pdb.Status.DisruptionsAllowed, pdb.Status.CurrentHealthy)
				}
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the disruption controller never observed PodDisruptionBudget %s: %v %+v", app.DatabaseService, err, pdb)
			case <-time.After(2 * time.Second):
			}
		}
		// A pod that is not running is evicted without looking at any
		// budget, which would prove nothing.
		pod, err := env.Kube.CoreV1().Pods(app.Namespace).Get(ctx, app.DatabaseService+"-0", metav1.GetOptions{})
		if err != nil || pod.Status.Phase != corev1.PodRunning {
			t.Fatalf("%s-0 is not running (%v); the eviction below would bypass the budget", app.DatabaseService, err)
		}
		err = env.Kube.PolicyV1().Evictions(app.Namespace).Evict(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: app.DatabaseService + "-0", Namespace: app.Namespace},
			DeleteOptions: &metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}},
		})
		if err != nil {
			t.Fatalf("dry-run eviction of %s-0 refused: %v", app.DatabaseService, err)
		}
	})
}
