package infra

// The NetworkPolicy test tier. The sandbox has no CNI, so nothing there
// enforces a NetworkPolicy; instead the exact NetworkPolicy objects the
// program declares (captured under mocks) are evaluated by cyclonus'
// pkg/matcher (github.com/mattfenwick/cyclonus v0.5.6), an engine that
// implements the Kubernetes NetworkPolicy semantics, over a truth table of
// (source, destination, port, protocol) -> allowed/denied. Every rule and
// its negative has a row, and TestEveryNetworkPolicyRuleIsPinned shows
// that removing or widening any rule flips at least one row.
//
// What the engine does not model, and the table therefore does not claim:
// connections from the pod's own node (kubelet probes), which Kubernetes
// always allows ("the only allowed connections into the pod are those from
// the pod's node and those allowed by the ingress list",
// kubernetes.io/docs/concepts/services-networking/network-policies/), and
// whether a CNI checks egress before or after Service DNAT (see the API
// server rows).

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mattfenwick/cyclonus/pkg/matcher"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/gateway"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/kube"
	"microk8s-platform/infra/network"
	"microk8s-platform/infra/observability"
)

// Addresses of the table. Pod IPs come from Calico's pool on MicroK8s
// (canonical/microk8s v1.35 microk8s-resources/default-args/cni-env:
// IPv4_CLUSTER_CIDR=10.1.0.0/16).
const (
	internetIP = "203.0.113.77"
	// kubernetesVIP is the kubernetes Service's ClusterIP on MicroK8s: the
	// first address of --service-cluster-ip-range=10.152.183.0/24
	// (canonical/microk8s v1.35 microk8s-resources/default-args/kube-apiserver).
	kubernetesVIP = "10.152.183.1"
	// otherNodeIP is an address outside the stack's subnet (another VM in
	// the VPC, the metadata service's neighbours...).
	otherNodeIP = "10.0.2.10"
	// kindAPIServer is where a kind cluster's API server listens (target
	// kubeconfig): the control-plane container on the kind network, 6443.
	kindAPIServer = "172.18.0.2"
	// hostOnlyIP is a Vagrant VM's host-only address, given as sshPrivateIp
	// (MetalLB's address); its API server advertises the NAT address on
	// the default route instead (mt.SSHAdvertised).
	hostOnlyIP = "192.168.56.10"
)

// pod is a traffic endpoint: a pod (namespace, labels, named ports) or,
// with no namespace, an address outside the cluster.
type pod struct {
	Name      string
	Namespace string
	Labels    map[string]string
	Ports     map[int]string // container port -> name
	IP        string
}

func (p pod) peer() *matcher.TrafficPeer {
	if p.Namespace == "" {
		return &matcher.TrafficPeer{IP: p.IP}
	}
	return &matcher.TrafficPeer{IP: p.IP, Internal: &matcher.InternalPeer{
		Namespace:       p.Namespace,
		NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": p.Namespace},
		PodLabels:       p.Labels,
	}}
}

// row is one line of the truth table.
type row struct {
	From, To string
	Port     int
	Proto    corev1.Protocol
	Allowed  bool
	Why      string
	// Side is which policy decides the row: both (the connection as a
	// whole), or only the source's egress or the destination's ingress,
	// for rules whose widening the other side would hide.
	Side side
}

type side string

const (
	both        side = ""
	egressSide  side = "egress only"
	ingressSide side = "ingress only"
)

// declared is what a stack's program declares: its NetworkPolicies and
// the pods of its workloads.
type declared struct {
	Policies []*networkingv1.NetworkPolicy
	Pods     map[string]pod
}

// capture runs stack's program under mocks (with config c, or the stack's
// own file when nil) and returns its NetworkPolicies as the API objects the
// provider would send, and its workloads' pods with the peers the table
// needs around them.
func capture(t *testing.T, stack string, c func(*testing.T) mt.Config, nodeIP string) declared {
	t.Helper()
	var m *mt.Mocks
	if c != nil {
		m, _ = run(t, stack, c(t))
	} else {
		m, _ = runStack(t, stack)
	}
	objs := kubeObjects(m)
	d := declared{Pods: map[string]pod{}}
	for _, o := range ofKind(objs, "NetworkPolicy") {
		b, err := json.Marshal(plain(resource.NewObjectProperty(o.Inputs)))
		if err != nil {
			t.Fatal(err)
		}
		np := &networkingv1.NetworkPolicy{}
		if err := json.Unmarshal(b, np); err != nil {
			t.Fatalf("NetworkPolicy %s/%s does not decode as networking.k8s.io/v1: %v\n%s", o.Namespace, o.Name, err, b)
		}
		// The API server defaults missing policyTypes; the engine does not,
		// so every policy of ours states them.
		if len(np.Spec.PolicyTypes) == 0 {
			t.Fatalf("NetworkPolicy %s/%s lists no policyTypes", np.Namespace, np.Name)
		}
		d.Policies = append(d.Policies, np)
	}
	ip := 10
	for _, w := range podOwners(objs) {
		p := pod{Name: w.Namespace + "/" + w.Name, Namespace: w.Namespace, Labels: w.PodLabels, Ports: map[int]string{}, IP: fmt.Sprintf("10.1.0.%d", ip)}
		ip++
		for _, c := range containers(w.kubeObject) {
			ports := mt.Get(c, "ports")
			if !ports.IsArray() {
				continue // a container that listens on nothing (a sidecar)
			}
			for _, cp := range ports.ArrayValue() {
				pm := cp.ObjectValue()
				p.Ports[int(mt.Get(pm, "containerPort").NumberValue())] = mt.Str(pm, "name")
			}
		}
		d.Pods[p.Name] = p
	}
	for _, want := range []string{"kong/kong", "comments/comments", "comments/postgres"} {
		if _, ok := d.Pods[want]; !ok {
			t.Fatalf("%s: no workload %s among %v", stack, want, slices.Sorted(maps.Keys(d.Pods)))
		}
	}
	extra := []pod{
		{Name: "prometheus", Namespace: observability.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "prometheus"}, Ports: map[int]string{9090: "http-web"}, IP: "10.1.1.10"},
		{Name: "coredns", Namespace: kube.DNSNamespace, Labels: map[string]string{kube.DNSPodLabel: kube.DNSPodValue}, Ports: map[int]string{53: "dns", 9153: "metrics"}, IP: "10.1.1.11"},
		// A kube-system pod that is not DNS, on the DNS port.
		{Name: "kube-system-other", Namespace: kube.DNSNamespace, Labels: map[string]string{"k8s-app": "metrics-server"}, Ports: map[int]string{53: "dns"}, IP: "10.1.1.12"},
		// A pod in another namespace wearing the service's labels: a label
		// match alone must not let it in or out.
		{Name: "impostor", Namespace: "default", Labels: plainLabels(app.API), Ports: map[int]string{8080: "http", 5432: "postgres"}, IP: "10.1.1.13"},
		// Pods a later change might add to our namespaces, matched by no
		// allow rule: the default deny is all that holds them.
		{Name: "new-in-comments", Namespace: app.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "debug"}, Ports: map[int]string{8080: "http", 5432: "postgres"}, IP: "10.1.1.14"},
		{Name: "new-in-kong", Namespace: gateway.Namespace, Labels: map[string]string{"app.kubernetes.io/name": "debug"}, Ports: map[int]string{8000: "proxy"}, IP: "10.1.1.15"},
		{Name: "internet", IP: internetIP},
		{Name: "node", IP: nodeIP},
		{Name: "other-node", IP: otherNodeIP},
		{Name: "kubernetes-vip", IP: kubernetesVIP},
		{Name: "kind-apiserver", IP: kindAPIServer},
		{Name: "host-only", IP: hostOnlyIP},
	}
	for _, p := range extra {
		d.Pods[p.Name] = p
	}
	return d
}

// plain turns a captured property value into the JSON the provider would
// send: secrets unwrapped, outputs by their known value, unknowns null.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		if o := v.OutputValue(); o.Known {
			return plain(o.Element)
		}
		return nil
	case v.IsComputed():
		return nil
	case v.IsObject():
		m := map[string]any{}
		for k, e := range v.ObjectValue() {
			m[string(k)] = plain(e)
		}
		return m
	case v.IsArray():
		var a []any
		for _, e := range v.ArrayValue() {
			a = append(a, plain(e))
		}
		return a
	}
	return v.Mappable()
}

func plainLabels(c kube.Component) map[string]string {
	return map[string]string{"app.kubernetes.io/name": c.Name, "app.kubernetes.io/component": c.Component}
}

// evaluate returns the rows whose verdict under policies differs from the
// table's, each as a line saying what went wrong.
func evaluate(t *testing.T, d declared, policies []*networkingv1.NetworkPolicy, rows []row) []string {
	t.Helper()
	engine := matcher.BuildNetworkPolicies(false, policies)
	var wrong []string
	for _, r := range rows {
		from, ok1 := d.Pods[r.From]
		to, ok2 := d.Pods[r.To]
		if !ok1 || !ok2 {
			t.Fatalf("row %s -> %s: unknown endpoint", r.From, r.To)
		}
		proto := r.Proto
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		res := engine.IsTrafficAllowed(&matcher.Traffic{
			Source: from.peer(), Destination: to.peer(),
			ResolvedPort: r.Port, ResolvedPortName: to.Ports[r.Port], Protocol: proto,
		})
		got := res.IsAllowed()
		switch r.Side {
		case egressSide:
			got = res.Egress.IsAllowed()
		case ingressSide:
			got = res.Ingress.IsAllowed()
		}
		if got != r.Allowed {
			wrong = append(wrong, fmt.Sprintf("%s -> %s %d/%s%s: allowed=%v, want %v (%s)", r.From, r.To, r.Port, proto, sideNote(r.Side), got, r.Allowed, r.Why))
		}
	}
	return wrong
}

func sideNote(s side) string {
	if s == both {
		return ""
	}
	return " (" + string(s) + ")"
}

const (
	kong     = "kong/kong"
	api      = "comments/comments"
	postgres = "comments/postgres"
	udp      = corev1.ProtocolUDP
)

// commonRows hold on every target.
var commonRows = []row{
	// Into the service: Kong and Prometheus, on its port only.
	{kong, api, app.HTTPPort, "", true, "Kong proxies to the service", both},
	{"prometheus", api, app.HTTPPort, "", true, "Prometheus scrapes the service", both},
	{"impostor", api, app.HTTPPort, "", false, "another namespace may not reach the service", both},
	{"internet", api, app.HTTPPort, "", false, "the internet reaches the service only through Kong", both},
	{kong, api, 9000, "", false, "Kong reaches only the service's declared port", both},
	{postgres, api, app.HTTPPort, "", false, "PostgreSQL opens no connection", both},
	{"new-in-comments", api, app.HTTPPort, "", false, "a new pod in comments is not the service's client", both},
	// Into PostgreSQL: the service only.
	{api, postgres, app.PostgresPort, "", true, "the service uses its database", both},
	{kong, postgres, app.PostgresPort, "", false, "Kong may not reach the database", both},
	{"prometheus", postgres, app.PostgresPort, "", false, "Prometheus may not reach the database", both},
	{"impostor", postgres, app.PostgresPort, "", false, "the service's labels in another namespace are not the service", both},
	{"new-in-comments", postgres, app.PostgresPort, "", false, "a new pod in comments may not reach the database", both},
	// Out of the service: PostgreSQL and DNS, nothing else.
	{api, "coredns", kube.DNSPort, udp, true, "the service resolves postgres.comments.svc", both},
	{api, "coredns", kube.DNSPort, "", true, "DNS over TCP (large answers)", both},
	{api, "coredns", 9153, "", false, "DNS pods, DNS port only", both},
	{api, "kube-system-other", kube.DNSPort, udp, false, "DNS means CoreDNS, not all of kube-system", both},
	{api, "internet", 443, "", false, "the service reaches no address outside the cluster", both},
	{api, "node", gateway.MicroK8sAPIPort, "", false, "the service does not talk to the Kubernetes API", both},
	{api, "kubernetes-vip", 443, "", false, "the service does not talk to the Kubernetes API (ClusterIP)", both},
	{api, kong, gateway.StatusPort, "", false, "the service may not scrape or call Kong", both},
	{api, "impostor", app.PostgresPort, "", false, "a database port in another namespace is not our database", both},
	// Out of PostgreSQL: nothing.
	{postgres, "coredns", kube.DNSPort, udp, false, "PostgreSQL resolves nothing", both},
	{postgres, "internet", 443, "", false, "PostgreSQL reaches nothing", both},
	{postgres, "node", gateway.MicroK8sAPIPort, "", false, "PostgreSQL reaches nothing", both},
	// Into Kong: the proxy from anywhere, the status port from Prometheus.
	{"internet", kong, gateway.ProxyPort, "", true, "clients reach the proxy", both},
	{"internet", kong, gateway.ProxyTLSPort, "", true, "clients reach the TLS proxy", both},
	{"impostor", kong, gateway.ProxyPort, "", true, "pods reach the proxy too", both},
	{"prometheus", kong, gateway.StatusPort, "", true, "Prometheus scrapes Kong's metrics", both},
	{"internet", kong, gateway.StatusPort, "", false, "status and metrics are not public", both},
	{"impostor", kong, gateway.StatusPort, "", false, "only Prometheus's namespace scrapes Kong", both},
	{"internet", kong, 8444, "", false, "the admin API is not reachable from outside the pod", both},
	{"internet", kong, 10254, "", false, "the controller's health port is for the kubelet only", both},
	{"prometheus", kong, gateway.ProxyPort + 1, "", false, "a port Kong does not serve stays closed", both},
	{"internet", "new-in-kong", gateway.ProxyPort, "", false, "the proxy rule is Kong's, not the namespace's", both},
	// Out of Kong: the service's pods, the Kubernetes API, DNS.
	{kong, "coredns", kube.DNSPort, udp, true, "Kong resolves its upstreams", both},
	{kong, "coredns", kube.DNSPort, "", true, "DNS over TCP", both},
	{kong, "impostor", app.HTTPPort, "", false, "the service's labels in another namespace are not an upstream", both},
	{kong, "prometheus", 9090, "", false, "Kong reaches no other workload", both},
	{kong, "internet", 80, "", false, "Kong reaches no address outside the cluster", both},
	{kong, "node", 22, "", false, "Kong may not reach the node's SSH", both},
	{kong, "node", 10250, "", false, "Kong may not reach the kubelet", both},
	{"new-in-kong", "internet", 443, "", false, "a new pod in kong reaches nothing", both},
	{"new-in-kong", api, app.HTTPPort, "", false, "the service admits the kong namespace, but kong's default deny holds a new pod there", both},
	{"internet", "new-in-comments", app.HTTPPort, "", false, "comments' default deny holds a new pod there", both},
	{kong, "coredns", 9153, "", false, "Kong: DNS pods, DNS port only", both},
	{kong, "kube-system-other", kube.DNSPort, udp, false, "Kong: DNS means CoreDNS", both},
	{kong, "internet", kube.DNSPort, udp, false, "Kong resolves through the cluster's DNS only", both},
	{api, "internet", kube.DNSPort, udp, false, "the service resolves through the cluster's DNS only", both},
	// Each side on its own: a widened rule on one side must show even
	// where the other side's policy still blocks the connection.
	{kong, api, 9000, "", false, "Kong's egress: the service's port only", egressSide},
	{kong, api, 9000, "", false, "the service's ingress: its port only", ingressSide},
	{kong, "new-in-comments", app.HTTPPort, "", false, "Kong's egress: the service's pods, not the namespace", egressSide},
	{api, postgres, 22, "", false, "the service's egress: PostgreSQL's port only", egressSide},
	{api, postgres, 22, "", false, "PostgreSQL's ingress: its port only", ingressSide},
	{"new-in-comments", postgres, app.PostgresPort, "", false, "PostgreSQL's ingress: the service's pods, not the namespace", ingressSide},
	{api, "new-in-comments", app.PostgresPort, "", false, "the service's egress: PostgreSQL's pods, not the namespace", egressSide},
}

// microK8sRows: on a MicroK8s VM of ours (aws, gcp, ssh) the API rule is
// the node's address on 16443 and the kubernetes ClusterIP on 443.
var microK8sRows = []row{
	{kong, "node", gateway.MicroK8sAPIPort, "", true, "the controller reaches the API server after Calico's DNAT view (node IP:16443)", both},
	{kong, "kubernetes-vip", 443, "", true, "the controller reaches the API server where policy runs before DNAT (ClusterIP:443)", both},
	{kong, "node", 443, "", false, "the node's 443 is not the API server on MicroK8s", both},
	{kong, "other-node", gateway.MicroK8sAPIPort, "", false, "only the stack's own subnet is the API server", both},
	{kong, "internet", gateway.MicroK8sAPIPort, "", false, "no API server on the internet", both},
	{kong, "kubernetes-vip", 80, "", false, "the ClusterIP on 443 only", both},
	{kong, "kind-apiserver", 6443, "", false, "6443 is not MicroK8s' API port", both},
}

// multiHomedRows: on target ssh the API rule names the address the API
// server advertises (the default route's, "node" here), not sshPrivateIp.
var multiHomedRows = []row{
	{kong, "host-only", gateway.MicroK8sAPIPort, "", false, "sshPrivateIp is MetalLB's address; the API server does not advertise it, so Calico never sees it as the API's", both},
}

// sshMultiHomed is target ssh on a Vagrant VM: sshHost and sshPrivateIp
// the host-only address, the default route (and so the API server's
// advertised address, mt.SSHAdvertised) on the NAT interface.
func sshMultiHomed(t *testing.T) mt.Config {
	return userKeys(mt.StackFile(t, "dev")).Set(map[string]string{
		"target": "ssh", "sshHost": hostOnlyIP, "sshPrivateIp": hostOnlyIP, "sshUser": "vagrant",
	})
}

// anyClusterRows: on an existing cluster (target kubeconfig) the API
// server's address is unknown, so the rule is any address on the API ports.
var anyClusterRows = []row{
	{kong, "kind-apiserver", 6443, "", true, "kind/kubeadm API server", both},
	{kong, "kubernetes-vip", 443, "", true, "the kubernetes ClusterIP", both},
	{kong, "node", gateway.MicroK8sAPIPort, "", true, "a MicroK8s API server", both},
	{kong, "internet", 80, "", false, "API ports only", both},
	{kong, "node", 22, "", false, "API ports only", both},
}

// tables are the stacks the table runs against and their node address.
var tables = []struct {
	name, stack string
	config      func(*testing.T) mt.Config // nil: the stack's own file
	nodeIP      string
	rows        []row
}{
	{"dev", "dev", nil, mt.AWSPrivateIP, append(slices.Clone(commonRows), microK8sRows...)},
	{"local", "local", nil, "192.168.49.2", append(slices.Clone(commonRows), anyClusterRows...)},
	{"ssh-multi-homed", "dev", sshMultiHomed, mt.SSHAdvertised, slices.Concat(commonRows, microK8sRows, multiHomedRows)},
}

func TestNetworkPolicyTruthTable(t *testing.T) {
	total := 0
	for _, tc := range tables {
		t.Run(tc.name, func(t *testing.T) {
			d := capture(t, tc.stack, tc.config, tc.nodeIP)
			for _, w := range evaluate(t, d, d.Policies, tc.rows) {
				t.Error(w)
			}
			t.Logf("%s: %d NetworkPolicies, %d rows (%d allowed, %d denied)", tc.name, len(d.Policies), len(tc.rows), count(tc.rows, true), count(tc.rows, false))
			total += len(tc.rows)
		})
	}
	t.Logf("truth table: %d rows over %d stacks", total, len(tables))
}

func count(rows []row, allowed bool) int {
	n := 0
	for _, r := range rows {
		if r.Allowed == allowed {
			n++
		}
	}
	return n
}

// mutation is a change to the declared policies that the table must notice.
type mutation struct {
	name  string
	apply func(nps []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy
}

// mutations are every way of weakening or removing one rule: drop a whole
// policy, a policy type, an ingress or egress rule, one of several peers
// or ports; widen a rule to every peer or every port; widen an ipBlock to
// the whole internet.
func mutations(nps []*networkingv1.NetworkPolicy) []mutation {
	var out []mutation
	add := func(i int, what string, f func(np *networkingv1.NetworkPolicy)) {
		id := nps[i].Namespace + "/" + nps[i].Name + ": " + what
		out = append(out, mutation{id, func(nps []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy { f(nps[i]); return nps }})
	}
	for i, np := range nps {
		id := np.Namespace + "/" + np.Name
		out = append(out, mutation{"drop " + id, func(nps []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			return slices.Delete(nps, i, i+1)
		}})
		for k := range np.Spec.PolicyTypes {
			if len(np.Spec.PolicyTypes) == 1 {
				break // dropping the only type is dropping the policy
			}
			add(i, fmt.Sprintf("drop policyType %s", np.Spec.PolicyTypes[k]), func(np *networkingv1.NetworkPolicy) {
				np.Spec.PolicyTypes = slices.Delete(np.Spec.PolicyTypes, k, k+1)
			})
		}
		for j, r := range np.Spec.Ingress {
			add(i, fmt.Sprintf("drop ingress[%d]", j), func(np *networkingv1.NetworkPolicy) {
				np.Spec.Ingress = slices.Delete(np.Spec.Ingress, j, j+1)
			})
			if len(r.From) > 0 {
				add(i, fmt.Sprintf("ingress[%d] from everyone", j), func(np *networkingv1.NetworkPolicy) { np.Spec.Ingress[j].From = nil })
			}
			if len(r.Ports) > 0 {
				add(i, fmt.Sprintf("ingress[%d] on every port", j), func(np *networkingv1.NetworkPolicy) { np.Spec.Ingress[j].Ports = nil })
			}
			for k := range r.From {
				if len(r.From) > 1 {
					add(i, fmt.Sprintf("drop ingress[%d].from[%d]", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Ingress[j].From = slices.Delete(np.Spec.Ingress[j].From, k, k+1)
					})
				}
				if r.From[k].PodSelector != nil && r.From[k].NamespaceSelector == nil {
					add(i, fmt.Sprintf("ingress[%d].from[%d] any pod of the namespace", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Ingress[j].From[k].PodSelector.MatchLabels = nil
					})
				}
			}
			for k := range r.Ports {
				if len(r.Ports) > 1 {
					add(i, fmt.Sprintf("drop ingress[%d].ports[%d]", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Ingress[j].Ports = slices.Delete(np.Spec.Ingress[j].Ports, k, k+1)
					})
				}
			}
		}
		for j, r := range np.Spec.Egress {
			add(i, fmt.Sprintf("drop egress[%d]", j), func(np *networkingv1.NetworkPolicy) {
				np.Spec.Egress = slices.Delete(np.Spec.Egress, j, j+1)
			})
			if len(r.To) > 0 && !allAddresses(r.To) {
				add(i, fmt.Sprintf("egress[%d] to everyone", j), func(np *networkingv1.NetworkPolicy) { np.Spec.Egress[j].To = nil })
			}
			if len(r.Ports) > 0 {
				add(i, fmt.Sprintf("egress[%d] on every port", j), func(np *networkingv1.NetworkPolicy) { np.Spec.Egress[j].Ports = nil })
			}
			for k, peer := range r.To {
				if len(r.To) > 1 {
					add(i, fmt.Sprintf("drop egress[%d].to[%d]", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].To = slices.Delete(np.Spec.Egress[j].To, k, k+1)
					})
				}
				if peer.IPBlock != nil && peer.IPBlock.CIDR != "0.0.0.0/0" {
					add(i, fmt.Sprintf("egress[%d].to[%d] ipBlock 0.0.0.0/0", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].To[k].IPBlock.CIDR = "0.0.0.0/0"
					})
				}
				if peer.NamespaceSelector != nil && peer.PodSelector != nil {
					add(i, fmt.Sprintf("egress[%d].to[%d] any pod of the namespace", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].To[k].PodSelector = nil
					})
					add(i, fmt.Sprintf("egress[%d].to[%d] any namespace", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].To[k].NamespaceSelector = nil
					})
				}
				if peer.NamespaceSelector == nil && peer.PodSelector != nil {
					add(i, fmt.Sprintf("egress[%d].to[%d] any pod of the namespace", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].To[k].PodSelector.MatchLabels = nil
					})
				}
			}
			for k := range r.Ports {
				if len(r.Ports) > 1 {
					add(i, fmt.Sprintf("drop egress[%d].ports[%d]", j, k), func(np *networkingv1.NetworkPolicy) {
						np.Spec.Egress[j].Ports = slices.Delete(np.Spec.Egress[j].Ports, k, k+1)
					})
				}
			}
		}
	}
	return out
}

// allAddresses: peers that are all ipBlock 0.0.0.0/0, which the engine
// matches against every address, pods' included, so "to everyone" changes
// nothing it can see.
func allAddresses(peers []networkingv1.NetworkPolicyPeer) bool {
	for _, p := range peers {
		if p.IPBlock == nil || p.IPBlock.CIDR != "0.0.0.0/0" || len(p.IPBlock.Except) > 0 {
			return false
		}
	}
	return true
}

// TestEveryNetworkPolicyRuleIsPinned: the table is not just consistent
// with the policies, it pins them. Every mutation (a rule removed or
// widened) of the declared policies flips at least one row.
func TestEveryNetworkPolicyRuleIsPinned(t *testing.T) {
	for _, tc := range tables {
		t.Run(tc.name, func(t *testing.T) {
			d := capture(t, tc.stack, tc.config, tc.nodeIP)
			if wrong := evaluate(t, d, d.Policies, tc.rows); len(wrong) > 0 {
				t.Fatalf("the declared policies fail the table:\n%s", strings.Join(wrong, "\n"))
			}
			muts := mutations(d.Policies)
			for _, m := range muts {
				nps := make([]*networkingv1.NetworkPolicy, len(d.Policies))
				for i, np := range d.Policies {
					nps[i] = np.DeepCopy()
				}
				wrong := evaluate(t, d, m.apply(nps), tc.rows)
				if len(wrong) == 0 {
					t.Errorf("mutation %q goes unnoticed: no row covers it", m.name)
					continue
				}
				t.Logf("%-70s caught by %s", m.name, wrong[0])
			}
			t.Logf("%s: %d mutations, each caught", tc.name, len(muts))
		})
	}
}

// TestKongAPIRuleMatchesMicroK8s pins the MicroK8s facts Kong's API
// egress rests on (canonical/microk8s v1.35):
// microk8s-resources/default-args/kube-apiserver sets --secure-port=16443
// (the port the firewall opens to admins, network.APIPort) and
// --service-cluster-ip-range=10.152.183.0/24, whose first address is the
// kubernetes Service's ClusterIP; microk8s-resources/default-args/cni-env
// sets CNI=calico, whose egress check sees the DNAT'd node address. The
// NetworkPolicy docs (kubernetes.io/docs/concepts/services-networking/
// network-policies/, ipBlock) leave the DNAT order to the CNI, so both
// forms are allowed.
func TestKongAPIRuleMatchesMicroK8s(t *testing.T) {
	if gateway.MicroK8sAPIPort != network.APIPort {
		t.Errorf("Kong's API egress port %d, MicroK8s' API port %d", gateway.MicroK8sAPIPort, network.APIPort)
	}
	svcRange := netip.MustParsePrefix("10.152.183.0/24")
	if vip := netip.MustParsePrefix(gateway.MicroK8sAPIVIP); vip.Bits() != 32 || vip.Addr() != svcRange.Addr().Next() {
		t.Errorf("kubernetes ClusterIP %s, want the first address of %s", vip, svcRange)
	}
	got := gateway.MicroK8sAPIServer(pulumi.String("10.0.1.0/24"))
	want := []gateway.IPPorts{{CIDR: pulumi.String("10.0.1.0/24"), Ports: []int{16443}}, {CIDR: pulumi.String("10.152.183.1/32"), Ports: []int{443}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("MicroK8sAPIServer = %v, want %v", got, want)
	}
}
