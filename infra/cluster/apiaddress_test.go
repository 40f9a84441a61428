package cluster

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/vm"
	"microk8s-platform/scripts/microk8s"
)

func TestParseAPIAddress(t *testing.T) {
	good := []struct{ in, want string }{
		{"advertise-address=10.0.2.15\nadvertise-port=16443\n", "10.0.2.15"},
		// Order, blank lines, CRLF and a repeated address do not matter.
		{"\nadvertise-port=16443\r\nadvertise-address=192.168.56.10\nadvertise-address=192.168.56.10\n\n", "192.168.56.10"},
	}
	for _, c := range good {
		a, err := ParseAPIAddress(c.in)
		if err != nil || a.String() != c.want {
			t.Errorf("ParseAPIAddress(%q) = %v, %v; want %s", c.in, a, err, c.want)
		}
	}
	bad := []struct{ in, why string }{
		{"", "printed no advertise-address line"},
		{"\n\n", "printed no advertise-address line"},
		{"advertise-port=16443\n", "printed no advertise-address line"},
		{"advertise-address=10.0.2.15\n", "printed no advertise-port line"},
		{"advertise-address=\nadvertise-port=16443\n", `advertised address "" is not an IP address`},
		{"advertise-address=vm.internal\nadvertise-port=16443\n", `"vm.internal" is not an IP address`},
		{"advertise-address=10.0.2.15/24\nadvertise-port=16443\n", `"10.0.2.15/24" is not an IP address`},
		{"advertise-address=fd00::15\nadvertise-port=16443\n", "advertises fd00::15, want an IPv4 address"},
		{"advertise-address=::ffff:10.0.2.15\nadvertise-port=16443\n", "want an IPv4 address"},
		{"advertise-address=0.0.0.0\nadvertise-port=16443\n", "not a unicast address"},
		{"advertise-address=127.0.0.1\nadvertise-port=16443\n", "not a unicast address"},
		{"advertise-address=10.0.2.15\nadvertise-address=192.168.56.10\nadvertise-port=16443\n", "want one address"},
		{"advertise-address=10.0.2.15\nadvertise-port=6443\n", `endpoint port is "6443", want 16443`},
		{"advertise-address=10.0.2.15\nadvertise-port=16443\nadvertise-port=443\n", `endpoint port is "443"`},
		{"ok\n", `unexpected line "ok"`},
		{"apiVersion: v1\nkind: Config\n", `unexpected line "apiVersion: v1"`},
		{"advertise-address=10.0.2.15\nadvertise-port=16443\n[api-address] done\n", `unexpected line "[api-address] done"`},
		{"address=10.0.2.15\nport=16443\n", `unexpected line "address=10.0.2.15"`},
	}
	for _, c := range bad {
		a, err := ParseAPIAddress(c.in)
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseAPIAddress(%q) = %v, %v; want an error with %q", c.in, a, err, c.why)
		}
	}
}

// newWithAPIStdout runs New with the apiaddress step printing stdout and
// returns the step's inputs, Cluster.APIAddress and the program's error.
func newWithAPIStdout(t *testing.T, stdout string) (resource.PropertyMap, string, error) {
	t.Helper()
	m := &mocks{res: map[string]resource.PropertyMap{}, apiStdout: stdout}
	var addr string
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		// Target ssh on a Vagrant VM: sshPrivateIp is the host-only address.
		h := vm.Existing("192.168.56.10", "192.168.56.10", "vagrant", 22, pulumi.String("KEY").ToStringOutput())
		c, err := New(ctx, "microk8s", Args{Host: h, Channel: "1.35/stable"})
		if err != nil {
			return err
		}
		c.APIAddress.ApplyT(func(s string) string { addr = s; return s })
		return nil
	}, pulumi.WithMocks("p", "dev", m))
	return m.res["microk8s-apiaddress"], addr, err
}

// The cluster's API address is what the host's cluster says, not the
// address we were given: on a multi-homed host they differ.
func TestAPIAddressComesFromTheStep(t *testing.T) {
	in, addr, err := newWithAPIStdout(t, "advertise-address=10.0.2.15\nadvertise-port=16443\n")
	if err != nil {
		t.Fatal(err)
	}
	if addr != "10.0.2.15" {
		t.Fatalf("APIAddress = %q, want the advertised 10.0.2.15 (not sshPrivateIp 192.168.56.10)", addr)
	}
	if in["stdin"].StringValue() != microk8s.Script("api-address.sh") {
		t.Error("the apiaddress step does not run api-address.sh")
	}
	if c := in["create"].StringValue(); !strings.Contains(c, "TIMEOUT='300'") || !strings.HasSuffix(c, "' 420 'the API server'\\''s advertised address in EndpointSlice default/kubernetes'") {
		t.Errorf("apiaddress step create = %s", c)
	}
	// A bad answer fails the program and names the step.
	if _, _, err := newWithAPIStdout(t, "advertise-address=fd00::15\nadvertise-port=16443\n"); err == nil || !strings.Contains(err.Error(), "microk8s-apiaddress: the API server advertises fd00::15, want an IPv4 address") {
		t.Fatalf("an IPv6 answer: %v", err)
	}
}
