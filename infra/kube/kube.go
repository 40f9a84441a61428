// Package kube holds what every Kubernetes building block shares: the
// app.kubernetes.io labels, object metadata, the restricted security
// context, and the CustomResource shorthand.
package kube

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// PartOf is the app.kubernetes.io/part-of value of every object.
const PartOf = "microk8s-platform"

// Component identifies one workload: its name and role.
type Component struct {
	Name      string // app.kubernetes.io/name, e.g. "comments"
	Component string // app.kubernetes.io/component, e.g. "api"
	Version   string // app.kubernetes.io/version (image tag); may be empty
}

// Selector is the stable subset of Labels that selectors match on (it must
// not contain the version, or a new tag would orphan the pods).
func (c Component) Selector() pulumi.StringMap {
	return pulumi.StringMap{
		"app.kubernetes.io/name":      pulumi.String(c.Name),
		"app.kubernetes.io/component": pulumi.String(c.Component),
	}
}

// Labels are the app.kubernetes.io labels every object of c carries.
func (c Component) Labels() pulumi.StringMap {
	l := c.Selector()
	l["app.kubernetes.io/part-of"] = pulumi.String(PartOf)
	l["app.kubernetes.io/managed-by"] = pulumi.String("pulumi")
	if c.Version != "" {
		l["app.kubernetes.io/version"] = pulumi.String(c.Version)
	}
	return l
}

// Meta is the metadata of an object of c called name in namespace ns
// (ns is "" for cluster-scoped objects).
func (c Component) Meta(name, ns string) *metav1.ObjectMetaArgs {
	m := &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: c.Labels()}
	if ns != "" {
		m.Namespace = pulumi.String(ns)
	}
	return m
}

// WithLabels returns m with extra labels added (ServiceMonitor and dashboard
// discovery labels).
func WithLabels(m *metav1.ObjectMetaArgs, extra map[string]string) *metav1.ObjectMetaArgs {
	l := pulumi.StringMap{}
	for k, v := range m.Labels.(pulumi.StringMap) {
		l[k] = v
	}
	for k, v := range extra {
		l[k] = pulumi.String(v)
	}
	out := *m
	out.Labels = l
	return &out
}

// RestrictedContainer is the Pod Security "restricted" container context:
// non-root, read-only root filesystem, no privilege escalation, no
// capabilities, the runtime's default seccomp profile.
func RestrictedContainer() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{
		RunAsNonRoot:             pulumi.Bool(true),
		ReadOnlyRootFilesystem:   pulumi.Bool(true),
		AllowPrivilegeEscalation: pulumi.Bool(false),
		Capabilities:             &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}},
		SeccompProfile:           &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// RestrictedPod is the pod-level half: a fixed non-root user and group.
func RestrictedPod(uid int) *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{
		RunAsNonRoot:   pulumi.Bool(true),
		RunAsUser:      pulumi.Int(uid),
		RunAsGroup:     pulumi.Int(uid),
		FsGroup:        pulumi.Int(uid),
		SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")},
	}
}

// Resources returns requests and limits.
func Resources(cpuReq, memReq, cpuLim, memLim string) *corev1.ResourceRequirementsArgs {
	return &corev1.ResourceRequirementsArgs{
		Requests: pulumi.StringMap{"cpu": pulumi.String(cpuReq), "memory": pulumi.String(memReq)},
		Limits:   pulumi.StringMap{"cpu": pulumi.String(cpuLim), "memory": pulumi.String(memLim)},
	}
}

// HTTPProbe probes path on a named port.
func HTTPProbe(path, port string, period, failures int) *corev1.ProbeArgs {
	return &corev1.ProbeArgs{
		HttpGet:          &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String(port)},
		PeriodSeconds:    pulumi.Int(period),
		TimeoutSeconds:   pulumi.Int(2),
		FailureThreshold: pulumi.Int(failures),
	}
}

// Custom declares a custom resource of apiVersion/kind with the given
// top-level fields (spec, or a plugin's config).
func Custom(ctx *pulumi.Context, name, apiVersion, kind string, meta *metav1.ObjectMetaArgs, fields map[string]any, opts ...pulumi.ResourceOption) (*apiextensions.CustomResource, error) {
	return apiextensions.NewCustomResource(ctx, name, &apiextensions.CustomResourceArgs{
		ApiVersion:  pulumi.String(apiVersion),
		Kind:        pulumi.String(kind),
		Metadata:    meta,
		OtherFields: kubernetes.UntypedArgs(fields),
	}, opts...)
}
