package app

import (
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/gateway"
	"microk8s-platform/infra/kube"
)

// networkPolicies: nothing enters or leaves the namespace unless a rule
// here allows it. In: Kong and Prometheus reach the service's port; only
// the service reaches PostgreSQL's. Out: the service reaches PostgreSQL and
// the cluster's DNS, nothing else; PostgreSQL opens no connection at all.
// infra/netpol_table_test.go evaluates these objects as a truth table.
func networkPolicies(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) error {
	in := []string{"Ingress"}
	return kube.NewNetworkPolicies(ctx, name, API, Namespace, []kube.NetworkPolicy{
		kube.DenyAll(),
		{Name: "comments-from-kong-and-prometheus", Pods: API.Selector(), Types: in, Ingress: networkingv1.NetworkPolicyIngressRuleArray{
			networkingv1.NetworkPolicyIngressRuleArgs{
				From:  networkingv1.NetworkPolicyPeerArray{kube.NamespacePeer(gateway.Namespace), kube.NamespacePeer(PrometheusNS)},
				Ports: kube.TCP("http"),
			},
		}},
		{Name: "postgres-from-comments", Pods: Database.Selector(), Types: in, Ingress: networkingv1.NetworkPolicyIngressRuleArray{
			networkingv1.NetworkPolicyIngressRuleArgs{
				From:  networkingv1.NetworkPolicyPeerArray{kube.PodsPeer("", API.Selector())},
				Ports: kube.TCP("postgres"),
			},
		}},
		{Name: "comments-to-postgres-and-dns", Pods: API.Selector(), Types: []string{"Egress"}, Egress: networkingv1.NetworkPolicyEgressRuleArray{
			networkingv1.NetworkPolicyEgressRuleArgs{
				To:    networkingv1.NetworkPolicyPeerArray{kube.PodsPeer("", Database.Selector())},
				Ports: kube.TCP("postgres"),
			},
			kube.DNSEgress(),
		}},
	}, opts...)
}
