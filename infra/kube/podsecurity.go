package kube

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
)

// Pod Security admission (https://kubernetes.io/docs/concepts/security/pod-security-admission/):
// a namespace asks the API server's built-in PodSecurity admission plugin to
// hold its pods to a level by labels. MicroK8s and the sandbox's
// kube-apiserver both run the plugin (it is on by default since 1.25).
const (
	// PodSecurityRestricted is the level every namespace of ours enforces:
	// our pods run non-root, with no privilege escalation, all
	// capabilities dropped and the runtime's default seccomp profile
	// (RestrictedPod, RestrictedContainer).
	PodSecurityRestricted = "restricted"
	// PodSecurityVersion pins the policy's definition to a Kubernetes
	// minor: a later API server does not tighten the rules under running
	// pods until we move this. v1.35 is the sandbox's kube-apiserver
	// (scripts/tools/kube/go.mod pins k8s.io/* v0.35.4) and MicroK8s
	// 1.35's.
	PodSecurityVersion = "v1.35"
	podSecurityPrefix  = "pod-security.kubernetes.io/"
)

// PodSecurityLabels are the labels that make the API server enforce level
// at PodSecurityVersion, and warn and audit at the same level, so a
// violation is refused (enforce), reported to the client (warn) and logged
// (audit).
func PodSecurityLabels(level string) map[string]string {
	l := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		l[podSecurityPrefix+mode] = level
		l[podSecurityPrefix+mode+"-version"] = PodSecurityVersion
	}
	return l
}

// RestrictedNamespace is the metadata of a namespace whose pods must meet
// the Pod Security "restricted" level: m with PodSecurityLabels added.
func RestrictedNamespace(m *metav1.ObjectMetaArgs) *metav1.ObjectMetaArgs {
	return WithLabels(m, PodSecurityLabels(PodSecurityRestricted))
}
