package infra

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	networkingv1 "k8s.io/api/networking/v1"

	mt "microk8s-platform/infra/internal/mocktest"
)

// kongAPIBlocks are the ipBlock egress rules of Kong's NetworkPolicy, as
// "cidr:port,port" strings.
func kongAPIBlocks(t *testing.T, m *mt.Mocks) []string {
	t.Helper()
	for _, o := range ofKind(kubeObjects(m), "NetworkPolicy") {
		if o.Name != "kong-to-backends-api-and-dns" {
			continue
		}
		b, err := json.Marshal(plain(resource.NewObjectProperty(o.Inputs)))
		if err != nil {
			t.Fatal(err)
		}
		np := &networkingv1.NetworkPolicy{}
		if err := json.Unmarshal(b, np); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range np.Spec.Egress {
			for _, p := range r.To {
				if p.IPBlock == nil {
					continue
				}
				var ports []string
				for _, pp := range r.Ports {
					ports = append(ports, pp.Port.String())
				}
				out = append(out, p.IPBlock.CIDR+":"+strings.Join(ports, ","))
			}
		}
		return out
	}
	t.Fatal("no NetworkPolicy kong-to-backends-api-and-dns")
	return nil
}

// Target ssh on a multi-homed host (issue 19): sshPrivateIp is the
// host-only address, the API server advertises the default route's (the
// apiaddress step says which). Kong's API egress names the advertised
// address on 16443, whatever it is, and never sshPrivateIp; MetalLB keeps
// sshPrivateIp.
func TestKongAPIRuleNamesTheAdvertisedAddress(t *testing.T) {
	for _, advertised := range []string{mt.SSHAdvertised, "10.0.3.7"} {
		m, err := runWith(t, "dev", sshMultiHomed(t), func(m *mt.Mocks) { m.APIStdout = mt.APIAnswer(advertised) })
		if err != nil {
			t.Fatal(err)
		}
		got := kongAPIBlocks(t, m)
		want := []string{advertised + "/32:16443", "10.152.183.1/32:443"}
		if !slices.Equal(got, want) {
			t.Errorf("advertised %s: Kong's API egress %v, want %v", advertised, got, want)
		}
		for _, b := range got {
			if strings.HasPrefix(b, hostOnlyIP+"/") || strings.HasPrefix(b, "0.0.0.0/0") {
				t.Errorf("Kong's API egress names %s (sshPrivateIp or any address): %v", b, got)
			}
		}
		addons := m.One(t, "command:remote:Command", "microk8s-addons")
		if !strings.Contains(mt.Str(addons.Inputs, "create"), "METALLB_ADDRESS='"+hostOnlyIP+"'") {
			t.Errorf("MetalLB's address is no longer sshPrivateIp: %s", mt.Str(addons.Inputs, "create"))
		}
	}
	// Without sshPrivateIp (or with sshHost a name) the rule is still the
	// advertised address, no longer any address.
	c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"target": "ssh", "sshHost": "vm.example.com", "sshUser": "vagrant"})
	m, err := runWith(t, "dev", c)
	if err != nil {
		t.Fatal(err)
	}
	if got := kongAPIBlocks(t, m); !slices.Equal(got, []string{mt.SSHAdvertised + "/32:16443", "10.152.183.1/32:443"}) {
		t.Errorf("no sshPrivateIp: Kong's API egress %v", got)
	}
	// A step that prints no usable address fails the program, naming it.
	_, err = runWith(t, "dev", sshMultiHomed(t), func(m *mt.Mocks) { m.APIStdout = "advertise-port=16443\n" })
	if err == nil || !strings.Contains(err.Error(), "microk8s-apiaddress: the API address step printed no advertise-address line") {
		t.Fatalf("an empty answer: %v", err)
	}
}

// On aws and gcp the rule stays the stack's subnet (apiServer says why),
// which holds the VM's address whatever the step prints.
func TestKongAPIRuleOnACloudVMIsTheSubnet(t *testing.T) {
	m, err := runWith(t, "dev", userKeys(mt.StackFile(t, "dev")), func(m *mt.Mocks) { m.APIStdout = mt.APIAnswer("10.0.1.99") })
	if err != nil {
		t.Fatal(err)
	}
	if got := kongAPIBlocks(t, m); !slices.Equal(got, []string{"10.0.1.0/24:16443", "10.152.183.1/32:443"}) {
		t.Errorf("aws: Kong's API egress %v", got)
	}
}
