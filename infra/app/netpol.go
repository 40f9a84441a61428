package app

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/gateway"
)

// networkPolicies: nothing reaches the namespace by default; Kong and
// Prometheus reach the service's port; only the service reaches PostgreSQL.
func networkPolicies(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) error {
	nsPeer := func(ns string) networkingv1.NetworkPolicyPeerArgs {
		return networkingv1.NetworkPolicyPeerArgs{NamespaceSelector: &metav1.LabelSelectorArgs{
			MatchLabels: pulumi.StringMap{"kubernetes.io/metadata.name": pulumi.String(ns)},
		}}
	}
	tcp := func(port string) networkingv1.NetworkPolicyPortArray {
		return networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Protocol: pulumi.String("TCP"), Port: pulumi.String(port)}}
	}
	policies := []struct {
		name string
		pods pulumi.StringMap
		from networkingv1.NetworkPolicyIngressRuleArray
	}{
		{"default-deny-ingress", pulumi.StringMap{}, nil},
		{"comments-from-kong-and-prometheus", API.Selector(), networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{
			From:  networkingv1.NetworkPolicyPeerArray{nsPeer(gateway.Namespace), nsPeer(PrometheusNS)},
			Ports: tcp("http"),
		}}},
		{"postgres-from-comments", Database.Selector(), networkingv1.NetworkPolicyIngressRuleArray{networkingv1.NetworkPolicyIngressRuleArgs{
			From:  networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{MatchLabels: API.Selector()}}},
			Ports: tcp("postgres"),
		}}},
	}
	for _, np := range policies {
		if _, err := networkingv1.NewNetworkPolicy(ctx, name+"-"+np.name, &networkingv1.NetworkPolicyArgs{
			Metadata: API.Meta(np.name, Namespace),
			Spec: networkingv1.NetworkPolicySpecArgs{
				PodSelector: metav1.LabelSelectorArgs{MatchLabels: np.pods},
				PolicyTypes: pulumi.StringArray{pulumi.String("Ingress")},
				Ingress:     np.from,
			},
		}, opts...); err != nil {
			return err
		}
	}
	return nil
}
