package gateway

import (
	"fmt"

	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/kube"
)

// Policy is what Kong's NetworkPolicies let through, besides the cluster's
// DNS: the pods Kong proxies to, the Kubernetes API for its controller,
// and who may scrape its status port.
type Policy struct {
	// Backends are the pods Kong proxies to (KIC routes to the pods'
	// endpoints, not to the Service's ClusterIP).
	Backends []Backend
	// APIServer is where the controller reaches the Kubernetes API, as the
	// pod's traffic looks when its egress is checked; see MicroK8sAPIServer.
	APIServer []IPPorts
	// MetricsFrom is the namespace whose pods may reach the status port
	// (Prometheus).
	MetricsFrom string
}

// Backend is a set of pods Kong proxies to and the port it uses.
type Backend struct {
	Namespace string
	Pods      pulumi.StringMap
	Port      string // the pods' container port name
}

// IPPorts is an address block and the TCP ports allowed on it. The block
// may be known only once the cluster runs (a pulumi.StringOutput: the API
// server's advertised address, cluster.Cluster.APIAddress).
type IPPorts struct {
	CIDR  pulumi.StringInput
	Ports []int
}

// MicroK8s facts the API rule rests on (canonical/microk8s v1.35):
//   - microk8s-resources/default-args/kube-apiserver: --secure-port=16443,
//     --service-cluster-ip-range=10.152.183.0/24 (so the `kubernetes`
//     Service, which takes the range's first address, is 10.152.183.1:443);
//   - microk8s-resources/default-args/cni-env: CNI=calico, the only one
//     supported. Calico's policy runs after kube-proxy's DNAT, so a pod's
//     connection to 10.152.183.1:443 is checked as one to the API server's
//     advertised address on 16443: the kubernetes Service's endpoint, which
//     is the address of the node's default route, since MicroK8s sets no
//     --advertise-address (k8s.io/apiserver v0.35.4
//     pkg/server/options/server_run_options.go; see
//     scripts/microk8s/apiaddress_test.go).
//
// The Kubernetes NetworkPolicy docs (kubernetes.io/docs/concepts/
// services-networking/network-policies/, "ipBlock") leave the order
// undefined ("connections from pods to Service IPs that get rewritten to
// cluster-external IPs may or may not be subject to ipBlock-based
// policies"), so both forms are allowed: whichever the CNI sees matches.
const (
	MicroK8sAPIPort   = 16443
	MicroK8sAPIVIP    = "10.152.183.1/32" // the kubernetes Service's ClusterIP
	kubernetesSvcPort = 443
)

// MicroK8sAPIServer is the API rule on a MicroK8s node whose API server
// advertises an address in nodeCIDR: that address on 16443 (after DNAT,
// Calico's view) and the kubernetes Service's ClusterIP on 443 (before
// DNAT).
func MicroK8sAPIServer(nodeCIDR pulumi.StringInput) []IPPorts {
	return []IPPorts{{CIDR: nodeCIDR, Ports: []int{MicroK8sAPIPort}}, {CIDR: pulumi.String(MicroK8sAPIVIP), Ports: []int{kubernetesSvcPort}}}
}

// AnyAPIServer is the API rule on a cluster whose API address we do not
// know (target kubeconfig): any address, but only on the API ports in use
// (443: the Service and managed clusters; 6443: kubeadm, kind, k3s;
// 16443: MicroK8s).
func AnyAPIServer() []IPPorts {
	return []IPPorts{{CIDR: pulumi.String("0.0.0.0/0"), Ports: []int{kubernetesSvcPort, 6443, MicroK8sAPIPort}}}
}

// networkPolicies: nothing enters or leaves the kong namespace unless a
// rule here allows it. In: anyone on the proxy ports; pol.MetricsFrom on
// the status port. Out: the backends' ports, the Kubernetes API, DNS.
// infra/netpol_table_test.go evaluates these objects as a truth table.
func networkPolicies(ctx *pulumi.Context, name string, pol Policy, opts ...pulumi.ResourceOption) error {
	if len(pol.APIServer) == 0 {
		return fmt.Errorf("gateway: no API server address for Kong's egress: its controller could not reach the Kubernetes API")
	}
	if pol.MetricsFrom == "" {
		return fmt.Errorf("gateway: no namespace may scrape Kong's status port (Policy.MetricsFrom is empty)")
	}
	out := networkingv1.NetworkPolicyEgressRuleArray{}
	for _, b := range pol.Backends {
		out = append(out, networkingv1.NetworkPolicyEgressRuleArgs{
			To:    networkingv1.NetworkPolicyPeerArray{kube.PodsPeer(b.Namespace, b.Pods)},
			Ports: kube.TCP(b.Port),
		})
	}
	for _, a := range pol.APIServer {
		if a.CIDR == nil {
			return fmt.Errorf("gateway: an API server rule without an address block (ports %v)", a.Ports)
		}
		var ports []any
		for _, p := range a.Ports {
			ports = append(ports, p)
		}
		out = append(out, networkingv1.NetworkPolicyEgressRuleArgs{
			To:    networkingv1.NetworkPolicyPeerArray{networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{Cidr: a.CIDR}}},
			Ports: kube.TCP(ports...),
		})
	}
	out = append(out, kube.DNSEgress())

	in := []string{"Ingress"}
	return kube.NewNetworkPolicies(ctx, name, Component, Namespace, []kube.NetworkPolicy{
		kube.DenyAll(),
		// No `from`: every source, the internet (through MetalLB or a
		// NodePort) included.
		{Name: "kong-proxy-from-anywhere", Pods: Component.Selector(), Types: in, Ingress: networkingv1.NetworkPolicyIngressRuleArray{
			networkingv1.NetworkPolicyIngressRuleArgs{Ports: kube.TCP("proxy", "proxy-tls")},
		}},
		{Name: "kong-status-from-prometheus", Pods: Component.Selector(), Types: in, Ingress: networkingv1.NetworkPolicyIngressRuleArray{
			networkingv1.NetworkPolicyIngressRuleArgs{
				From:  networkingv1.NetworkPolicyPeerArray{kube.NamespacePeer(pol.MetricsFrom)},
				Ports: kube.TCP("status"),
			},
		}},
		{Name: "kong-to-backends-api-and-dns", Pods: Component.Selector(), Types: []string{"Egress"}, Egress: out},
	}, opts...)
}
