//go:build e2e

package main

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/kube"
)

// The data disk's static volumes (infra/vm/README.md), bound by the
// sandbox's real PersistentVolume controller and scheduler: PostgreSQL's
// volume pre-bound to its claim (claimRef), Prometheus's selected by label,
// in the no-provisioner class with WaitForFirstConsumer, next to a decoy
// volume of the same class that must bind to neither; and a restricted pod
// using both claims is admitted. The local stack has no data disk, so the
// objects live in a namespace of the test's own, shaped as the program and
// enable-addons.sh declare them.
func init() {
	registerAfterUp("data disk: static volumes bind", func(t *testing.T, env e2eEnv) {
		kc, ctx := env.Kube, env.Ctx
		const ns = "e2e-data"
		retain := corev1.PersistentVolumeReclaimRetain
		wffc := storagev1.VolumeBindingWaitForFirstConsumer
		dir := corev1.HostPathDirectory
		class := app.DataClass
		gi := func(n int64) resource.Quantity { return *resource.NewQuantity(n<<30, resource.BinarySI) }
		pv := func(name string, labels map[string]string, claim *corev1.ObjectReference, size int64) *corev1.PersistentVolume {
			return &corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
				Spec: corev1.PersistentVolumeSpec{
					Capacity:                      corev1.ResourceList{corev1.ResourceStorage: gi(size)},
					AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					PersistentVolumeReclaimPolicy: retain,
					StorageClassName:              class,
					ClaimRef:                      claim,
					PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
						Path: "/var/lib/platform-data/" + name, Type: &dir,
					}},
				},
			}
		}
		claim := func(name string, selector map[string]string) *corev1.PersistentVolumeClaim {
			c := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: &class,
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: gi(5)}},
				},
			}
			if selector != nil {
				c.Spec.Selector = &metav1.LabelSelector{MatchLabels: selector}
			}
			return c
		}
		promLabel := map[string]string{"microk8s-platform/data": "prometheus"}
		pvs := []*corev1.PersistentVolume{
			pv("e2e-"+app.DataVolume, nil, &corev1.ObjectReference{Namespace: ns, Name: app.DataClaim}, 5),
			pv("e2e-platform-data-prometheus", promLabel, nil, 10),
			pv("e2e-platform-data-decoy", nil, nil, 20),
		}
		mustCreate := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("create %s: %v", what, err)
			}
		}
		_, err := kc.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "kubernetes.io/no-provisioner",
			ReclaimPolicy: &retain, VolumeBindingMode: &wffc,
		}, metav1.CreateOptions{})
		mustCreate("StorageClass", err)
		_, err = kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: kube.PodSecurityLabels(kube.PodSecurityRestricted)}}, metav1.CreateOptions{})
		mustCreate("namespace", err)
		t.Cleanup(func() {
			_ = kc.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
			for _, v := range pvs {
				_ = kc.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{})
			}
			_ = kc.StorageV1().StorageClasses().Delete(ctx, class, metav1.DeleteOptions{})
		})
		for _, v := range pvs {
			_, err := kc.CoreV1().PersistentVolumes().Create(ctx, v, metav1.CreateOptions{})
			mustCreate("PersistentVolume "+v.Name, err)
		}
		for _, c := range []*corev1.PersistentVolumeClaim{claim(app.DataClaim, nil), claim("prometheus-db", promLabel)} {
			_, err := kc.CoreV1().PersistentVolumeClaims(ns).Create(ctx, c, metav1.CreateOptions{})
			mustCreate("claim "+c.Name, err)
		}
		// WaitForFirstConsumer: the claims bind once a pod that uses them
		// is scheduled. The pod passes Pod Security restricted.
		no, yes := false, true
		uid := int64(app.PostgresUID)
		_, err = kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "uses-both"},
			Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: &yes, RunAsUser: &uid,
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "c", Image: "registry.k8s.io/pause:3.10",
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no,
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					VolumeMounts: []corev1.VolumeMount{{Name: "pg", MountPath: "/pg"}, {Name: "prom", MountPath: "/prom"}},
				}},
				Volumes: []corev1.Volume{
					{Name: "pg", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: app.DataClaim}}},
					{Name: "prom", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "prometheus-db"}}},
				},
			},
		}, metav1.CreateOptions{})
		mustCreate("pod (refused by Pod Security?)", err)

		want := map[string]string{app.DataClaim: "e2e-" + app.DataVolume, "prometheus-db": "e2e-platform-data-prometheus"}
		deadline := time.Now().Add(90 * time.Second)
		for {
			got := map[string]string{}
			for name := range want {
				c, err := kc.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
				if err == nil && c.Status.Phase == corev1.ClaimBound {
					got[name] = c.Spec.VolumeName
				}
			}
			if len(got) == len(want) {
				for name, v := range want {
					if got[name] != v {
						t.Errorf("claim %s bound to %s, want %s", name, got[name], v)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("claims not bound after 90s: %v of %v", got, want)
			}
			time.Sleep(time.Second)
		}
		if d, err := kc.CoreV1().PersistentVolumes().Get(ctx, "e2e-platform-data-decoy", metav1.GetOptions{}); err != nil || d.Spec.ClaimRef != nil {
			t.Errorf("the decoy volume was bound: %v %v", d.Spec.ClaimRef, err)
		}
	})
}
