package microk8s

// api-address.sh: the address the API server advertises, as the cluster
// records it. The upstream facts it rests on:
//
//   - canonical/microk8s branch 1.35 microk8s-resources/default-args/
//     kube-apiserver sets neither --advertise-address nor --bind-address
//     (a copy in testdata/upstream, checked by
//     TestMicroK8sSetsNoAdvertiseAddress).
//   - k8s.io/apiserver v0.35.4 pkg/server/options/server_run_options.go:
//     --advertise-address "If blank, the --bind-address will be used. If
//     --bind-address is unspecified, the host's default interface will be
//     used" (DefaultAdvertiseAddress -> SecureServingOptions.
//     DefaultExternalAddress -> k8s.io/apimachinery v0.35.4
//     pkg/util/net/interface.go ResolveBindAddress/ChooseHostInterface, which
//     picks the interface of the default route); ApplyTo sets
//     PublicAddress to it.
//   - k8s.io/kubernetes v1.35.4 pkg/controlplane/instance.go (PublicIP:
//     PublicAddress) and pkg/controlplane/controller/kubernetesservice/
//     controller.go (ReconcileEndpoints("kubernetes", PublicIP, ports)):
//     the kubernetes Service's endpoints, and its EndpointSlice
//     (pkg/controlplane/reconcilers/endpointsadapter.go, label
//     kubernetes.io/service-name=kubernetes), are that address on the
//     secure port.
//   - kubectl's -o jsonpath is k8s.io/client-go util/jsonpath with missing
//     keys allowed (k8s.io/cli-runtime v0.35.4 pkg/printers/jsonpath.go,
//     genericclioptions/jsonpath_flags.go: allow-missing-template-keys
//     defaults to true) over the object's JSON.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/jsonpath"
)

// runSplit runs a script and returns its stdout and stderr apart: the
// step's stdout is parsed (infra/cluster.ParseAPIAddress), so nothing but
// the result may be on it.
func (h *host) runSplit(script string, extra ...string) (string, string, error) {
	cmd := exec.Command("bash", script)
	cmd.Env = append(append([]string{}, h.env...), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (h *host) sliceCalls() string {
	b, _ := os.ReadFile(filepath.Join(h.state, "slice-calls"))
	return strings.TrimSpace(string(b))
}

// On a multi-homed host (NAT 10.0.2.15 with the default route, host-only
// 192.168.56.10) the script prints the address the slice names, which is
// the default route's, and nothing else on stdout; twice, changing nothing.
func TestAPIAddressIsTheAdvertisedOne(t *testing.T) {
	h := newHost(t)
	env := []string{"STANDIN_HOST_IPS=10.0.2.15 192.168.56.10", "STANDIN_ROUTE_SRC=10.0.2.15"}
	for range 2 {
		out, errOut, err := h.runSplit("api-address.sh", env...)
		if err != nil {
			t.Fatalf("%v\n%s%s", err, out, errOut)
		}
		if out != "advertise-address=10.0.2.15\nadvertise-port=16443\n" {
			t.Fatalf("stdout %q (stderr %q)", out, errOut)
		}
	}
	if m := h.mutations(); len(m) != 0 {
		t.Fatalf("a read-only step changed %v", m)
	}
	// Every address of the slice is printed (the parser, not the script,
	// decides what is acceptable).
	out, _, err := h.runSplit("api-address.sh", "STANDIN_ADVERTISED=10.0.1.10 10.0.1.11")
	if err != nil || out != "advertise-address=10.0.1.10\nadvertise-address=10.0.1.11\nadvertise-port=16443\n" {
		t.Fatalf("two endpoints: %v %q", err, out)
	}
}

// The API server is down at first (enable-addons.sh may just have
// restarted it), then its slice has no endpoint yet: the script retries
// and prints the address once there is one.
func TestAPIAddressWaitsForTheSlice(t *testing.T) {
	h := newHost(t)
	out, errOut, err := h.runSplit("api-address.sh", "STANDIN_APISERVER_DOWN=2", "STANDIN_SLICE_EMPTY=2", "INTERVAL=0.1", "TIMEOUT=20")
	if err != nil || out != "advertise-address=10.0.1.10\nadvertise-port=16443\n" {
		t.Fatalf("%v: stdout %q\n%s", err, out, errOut)
	}
	if n := h.sliceCalls(); n != "5" {
		t.Errorf("asked %s times, want 5 (2 refused, 2 empty, 1 answer)", n)
	}
	for _, want := range []string{"kubectl failed: The connection to the server 127.0.0.1:16443 was refused", "the slice names no address and port yet"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
}

// No address within TIMEOUT: the step fails saying what it waited for and
// what it last saw, and prints nothing a parser could take for an address.
func TestAPIAddressGivesUpClearly(t *testing.T) {
	cases := []struct{ env, last string }{
		{"STANDIN_SLICE_EMPTY=100000", "last: the slice names no address and port yet"},
		{"STANDIN_APISERVER_DOWN=100000", "last: kubectl failed: The connection to the server 127.0.0.1:16443 was refused"},
	}
	for _, c := range cases {
		t.Run(c.env, func(t *testing.T) {
			h := newHost(t)
			out, errOut, err := h.runSplit("api-address.sh", c.env, "TIMEOUT=1", "INTERVAL=0.2")
			if err == nil {
				t.Fatalf("succeeded: %q", out)
			}
			want := "gave up after 1s waiting for the API server's advertised address in EndpointSlice default/kubernetes (label kubernetes.io/service-name=kubernetes); " + c.last
			if !strings.Contains(errOut, want) {
				t.Fatalf("stderr lacks %q:\n%s", want, errOut)
			}
			if out != "" {
				t.Fatalf("stdout on failure: %q", out)
			}
		})
	}
}

// The script's jsonpath, run by kubectl's engine on the List that
// `kubectl get endpointslices -l ...` returns (an EndpointSlice as the API
// server writes it for the kubernetes Service), prints exactly what the
// stand-in prints; on a slice without endpoints, only the port.
func TestAPIAddressQueryMatchesKubectl(t *testing.T) {
	m := regexp.MustCompile(`(?m)^query='([^']*)'$`).FindStringSubmatch(Script("api-address.sh"))
	if m == nil {
		t.Fatal("api-address.sh: no query='...' line")
	}
	if !strings.Contains(Script("api-address.sh"), `-o "jsonpath=$query"`) {
		t.Fatal("api-address.sh does not pass $query to kubectl -o jsonpath")
	}
	port, name := int32(16443), "https"
	proto := corev1.ProtocolTCP
	ready := true
	slice := func(addrs ...string) discoveryv1.EndpointSlice {
		s := discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  metav1.ObjectMeta{Name: "kubernetes", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
		}
		if len(addrs) > 0 {
			s.Endpoints = []discoveryv1.Endpoint{{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}}
		}
		return s
	}
	run := func(s discoveryv1.EndpointSlice) string {
		b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{s}})
		must(t, err)
		var obj any
		must(t, json.Unmarshal(b, &obj))
		j := jsonpath.New("out")
		j.AllowMissingKeys(true)
		must(t, j.Parse(m[1]))
		var out bytes.Buffer
		must(t, j.Execute(&out, obj))
		return out.String()
	}
	standin := func(extra ...string) string {
		h := newHost(t)
		bin, _ := filepath.Abs("testdata/standins/microk8s")
		cmd := exec.Command(bin, "kubectl", "get", "endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes", "-o", "jsonpath="+m[1])
		cmd.Env = append(append([]string{}, h.env...), extra...)
		out, err := cmd.Output()
		must(t, err)
		return string(out)
	}
	if got, want := run(slice("10.0.2.15")), standin("STANDIN_ROUTE_SRC=10.0.2.15"); got != want || got != "port=16443\naddress=10.0.2.15\n" {
		t.Errorf("kubectl's jsonpath prints %q, the stand-in %q", got, want)
	}
	if got, want := run(slice()), standin("STANDIN_SLICE_EMPTY=1"); got != want || got != "port=16443\n" {
		t.Errorf("no endpoints: kubectl's jsonpath prints %q, the stand-in %q", got, want)
	}
}

// upstreamAPIServerArgs is a verbatim copy of canonical/microk8s branch
// 1.35 microk8s-resources/default-args/kube-apiserver (the branch at
// 8c5f9b025b67ee7c67020196fa827f39c22c8380; the file last changed in
// 03f0791b9f189f14efca9c8fd47c38cd34582b7e).
const upstreamAPIServerArgs = "testdata/upstream/microk8s-1.35-default-args-kube-apiserver"

// The reason the address must be found on the host: MicroK8s's API server
// is told neither where to advertise nor where to bind, so it advertises
// the default route's address. The test host's apiserverArgs are lines of
// the same file.
func TestMicroK8sSetsNoAdvertiseAddress(t *testing.T) {
	b, err := os.ReadFile(upstreamAPIServerArgs)
	must(t, err)
	heads := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "--") {
			head, _, _ := strings.Cut(line, "=")
			heads[head] = line
		}
	}
	if heads["--secure-port"] != "--secure-port=16443" || len(heads) < 20 {
		t.Fatalf("%s does not look like MicroK8s's kube-apiserver args: %v", upstreamAPIServerArgs, heads)
	}
	for _, f := range []string{"--advertise-address", "--bind-address"} {
		if l, ok := heads[f]; ok {
			t.Errorf("MicroK8s sets %s: the API server's address would be known without asking the cluster", l)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(apiserverArgs), "\n") {
		head, _, _ := strings.Cut(line, "=")
		if heads[head] != line {
			t.Errorf("the test host's %q is not MicroK8s 1.35's (%q)", line, heads[head])
		}
	}
}
