package kube

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Cluster DNS as MicroK8s' dns addon runs it (canonical/microk8s-core-addons,
// addons/dns/coredns.yaml: CoreDNS in kube-system, pods labelled
// k8s-app: kube-dns, serving 53/UDP and 53/TCP); kubeadm, kind and k3s
// label theirs the same.
const (
	DNSNamespace = "kube-system"
	DNSPodLabel  = "k8s-app"
	DNSPodValue  = "kube-dns"
	DNSPort      = 53
)

// NamespacePeer is every pod of namespace ns (by the label the API server
// sets on every namespace, kubernetes.io/metadata.name).
func NamespacePeer(ns string) networkingv1.NetworkPolicyPeerArgs {
	return networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: &metav1.LabelSelectorArgs{
		MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(ns)},
	}}
}

// PodsPeer is the pods matching labels in namespace ns; ns "" means the
// policy's own namespace.
func PodsPeer(ns string, labels pulumi.StringMap) networkingv1.NetworkPolicyPeerArgs {
	p := networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: labels}}
	if ns != "" {
		p.NamespaceSelector = NamespacePeer(ns).NamespaceSelector
	}
	return p
}

// TCP lists TCP ports, each a container port's name or a number.
func TCP(ports ...any) networkingv1.NetworkPolicyPortArray {
	var out networkingv1.NetworkPolicyPortArray
	for _, p := range ports {
		var port pulumi.Input
		switch p := p.(type) {
		case int:
			port = pulumi.Int(p)
		case string:
			port = pulumi.String(p)
		default:
			panic("kube.TCP: a port is an int or a string")
		}
		out = append(out, networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: port})
	}
	return out
}

// DNSEgress lets the selected pods query the cluster's DNS and nothing else
// in kube-system.
func DNSEgress() networkingv1.NetworkPolicyEgressRuleArgs {
	return networkingv1.NetworkPolicyEgressRuleArgs{
		To: networkingv1.NetworkPolicyPeerArray{PodsPeer(DNSNamespace, pulumi.StringMap{DNSPodLabel: pulumi.String(DNSPodValue)})},
		Ports: networkingv1.NetworkPolicyPortArray{
			networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("UDP"), Port: pulumi.Int(DNSPort)},
			networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.Int(DNSPort)},
		},
	}
}

// NetworkPolicy is one policy: the pods it selects (empty: every pod of the
// namespace) and what it lets in and out. A nil Ingress or Egress with its
// type listed in Types denies that direction.
type NetworkPolicy struct {
	Name    string
	Pods    pulumi.StringMap
	Types   []string // "Ingress", "Egress"
	Ingress networkingv1.NetworkPolicyIngressRuleArray
	Egress  networkingv1.NetworkPolicyEgressRuleArray
}

// DenyAll is a namespace's default: no pod takes or opens any connection
// that another policy does not allow.
func DenyAll() NetworkPolicy {
	return NetworkPolicy{Name: "default-deny", Pods: pulumi.StringMap{}, Types: []string{"Ingress", "Egress"}}
}

// NewNetworkPolicies declares policies in namespace ns, labelled as c's.
func NewNetworkPolicies(ctx *pulumi.Context, prefix string, c Component, ns string, policies []NetworkPolicy, opts ...pulumi.ResourceOption) error {
	for _, np := range policies {
		if _, err := networkingv1.NewNetworkPolicy(ctx, prefix+"-"+np.Name, &networkingv1.NetworkPolicyArgs{
			Metadata: c.Meta(np.Name, ns),
			Spec: networkingv1.NetworkPolicySpecArgs{
				PodSelector: metav1.LabelSelectorArgs{MatchLabels: np.Pods},
				PolicyTypes: pulumi.ToStringArray(np.Types),
				Ingress:     np.Ingress,
				Egress:      np.Egress,
			},
		}, opts...); err != nil {
			return err
		}
	}
	return nil
}
