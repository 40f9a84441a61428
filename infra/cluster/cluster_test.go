package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/vm"
	"microk8s-platform/scripts/microk8s"
)

type mocks struct {
	mu  sync.Mutex
	res map[string]resource.PropertyMap // by name
	// apiStdout is what the apiaddress step prints; a NAT address on the
	// default route when empty.
	apiStdout string
}

func (m *mocks) NewResource(a pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.res[a.Name] = a.Inputs
	m.mu.Unlock()
	out := a.Inputs.Copy()
	if a.TypeToken == "command:remote:Command" {
		out["stdout"] = resource.NewStringProperty("apiVersion: v1\nkind: Config\n")
		if a.Inputs["stdin"].StringValue() == microk8s.Script("api-address.sh") {
			stdout := m.apiStdout
			if stdout == "" {
				stdout = "advertise-address=10.0.2.15\nadvertise-port=16443\n"
			}
			out["stdout"] = resource.NewStringProperty(stdout)
		}
	}
	return a.Name + "-id", out, nil
}

func (m *mocks) Call(pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return resource.PropertyMap{}, nil
}

// install runs New under mocks for a host with the given machine id and
// addresses, and returns the registered inputs by resource name. A host
// with a machine id (a cloud VM) has a data disk, vol-0<machine id>.
func install(t *testing.T, machineID, publicIP, privateIP string) map[string]resource.PropertyMap {
	t.Helper()
	return installDisk(t, machineID, publicIP, privateIP, "vol-0"+strings.TrimPrefix(machineID, "i-0"))
}

func installDisk(t *testing.T, machineID, publicIP, privateIP, volumeID string) map[string]resource.PropertyMap {
	t.Helper()
	m := &mocks{res: map[string]resource.PropertyMap{}}
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		h := vm.Existing(publicIP, privateIP, "ubuntu", 22, pulumi.String("KEY").ToStringOutput())
		if machineID != "" {
			h.MachineID = pulumi.String(machineID).ToStringOutput()
			h.DataDisk = &vm.DataDisk{Device: pulumi.String(vm.DataDeviceAWS(volumeID)).ToStringOutput(), ID: pulumi.String(volumeID).ToStringOutput()}
			h.DataDir = vm.DataMount
		}
		_, err := New(ctx, "microk8s", Args{Host: h, Channel: "1.35/stable", Observability: true, ClusterIdentifier: ClusterIdentifier("p", "dev"),
			DataDirs: []DataDir{{"postgres", 999, 999}, {"prometheus", 1000, 2000}}})
		return err
	}, pulumi.WithMocks("p", "dev", m))
	if err != nil {
		t.Fatal(err)
	}
	return m.res
}

func triggers(t *testing.T, res map[string]resource.PropertyMap, step string) []string {
	t.Helper()
	in, ok := res["microk8s-"+step]
	if !ok {
		t.Fatalf("no step %s", step)
	}
	var out []string
	for _, v := range in["triggers"].ArrayValue() {
		out = append(out, v.StringValue())
	}
	return out
}

// A VM replaced behind the same Elastic/static IP (pulumi up --replace, a
// subnet change, a reclaimed spot VM) has a new instance id: every step's
// triggers change, so every step runs again on the new machine. Nothing
// else changed, and the same machine gives the same triggers.
func TestANewMachineReRunsEveryStep(t *testing.T) {
	a := install(t, "i-0aaa", "203.0.113.10", "10.0.1.10")
	again := install(t, "i-0aaa", "203.0.113.10", "10.0.1.10")
	b := install(t, "i-0bbb", "203.0.113.10", "10.0.1.10")
	for _, s := range Steps {
		ta, tb := triggers(t, a, s.Name), triggers(t, b, s.Name)
		if !reflect.DeepEqual(ta, triggers(t, again, s.Name)) {
			t.Errorf("%s: the same machine gives other triggers", s.Name)
		}
		if reflect.DeepEqual(ta, tb) {
			t.Errorf("%s: triggers %v do not change with the machine", s.Name, ta)
		}
		if !contains(tb, "i-0bbb") {
			t.Errorf("%s: triggers %v lack the instance id", s.Name, tb)
		}
	}
	// Target ssh has no machine id: its address stands for the machine.
	// (Nor a data disk: no data step.)
	c := install(t, "", "192.0.2.50", "")
	d := install(t, "", "192.0.2.51", "")
	if _, ok := c["microk8s-data"]; ok {
		t.Error("a data step on a host without a data disk")
	}
	for _, s := range Steps {
		if s.Name == "data" {
			continue
		}
		if reflect.DeepEqual(triggers(t, c, s.Name), triggers(t, d, s.Name)) {
			t.Errorf("%s: another ssh host does not re-run the step", s.Name)
		}
	}
}

// The data step runs after the host is up and before MicroK8s, finds the
// disk by its NVMe id, and runs again for another disk (a restore) on the
// same machine.
func TestDataDiskIsMountedBeforeMicroK8s(t *testing.T) {
	res := install(t, "i-0aaa", "203.0.113.10", "10.0.1.10")
	create := res["microk8s-data"]["create"].StringValue()
	for _, want := range []string{
		"DEVICE='/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0aaa'",
		"MOUNT_POINT='" + DataMount + "'", "DIRS='postgres:999:999 prometheus:1000:2000'",
	} {
		if !strings.Contains(create, want) {
			t.Errorf("data step lacks %s: %s", want, create)
		}
	}
	other := installDisk(t, "i-0aaa", "203.0.113.10", "10.0.1.10", "vol-0fff")
	if reflect.DeepEqual(triggers(t, res, "data"), triggers(t, other, "data")) {
		t.Error("another disk does not re-run the data step")
	}
	var names []string
	for _, s := range Steps {
		names = append(names, s.Name)
	}
	if strings.Join(names, " ") != "wait data install addons kubeconfig apiaddress" {
		t.Errorf("steps run in the order %v", names)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The provider's clusterIdentifier is the same for every run of a stack, so
// a re-rendered kubeconfig updates the provider rather than replacing it and
// every object on it (pulumi-kubernetes v4.32.0 sdk/go/kubernetes/provider.go,
// ProviderArgs.ClusterIdentifier).
func TestProviderHasAStableClusterIdentifier(t *testing.T) {
	a := install(t, "i-0aaa", "203.0.113.10", "10.0.1.10")
	b := install(t, "i-0bbb", "198.51.100.7", "10.0.1.11")
	ida, idb := a["microk8s"]["clusterIdentifier"], b["microk8s"]["clusterIdentifier"]
	if !ida.IsString() || ida.StringValue() != "p-dev-microk8s" || ida.StringValue() != idb.StringValue() {
		t.Fatalf("clusterIdentifier %v, %v", ida, idb)
	}
	if ClusterIdentifier("p", "prod") == ClusterIdentifier("p", "dev") {
		t.Fatal("two stacks share a cluster identifier")
	}
}

func TestStepEnvironment(t *testing.T) {
	res := install(t, "i-0aaa", "203.0.113.10", "10.0.1.10")
	create := res["microk8s-addons"]["create"].StringValue()
	for _, want := range []string{"METALLB_ADDRESS='10.0.1.10'", "OBSERVABILITY='true'", "ALERTMANAGER_SECRET='" + AlertmanagerSecret + "'", "PROMETHEUS_STORAGE='10Gi'",
		"PROMETHEUS_RETENTION_SIZE='8GB'", "PROMETHEUS_UID='1000'", "PROMETHEUS_GID='2000'", "DATA_MOUNT='" + DataMount + "'"} {
		if !strings.Contains(create, want) {
			t.Errorf("addons create lacks %s: %s", want, create)
		}
	}
	if c := res["microk8s-install"]["create"].StringValue(); !strings.Contains(c, "CHANNEL='1.35/stable'") || !strings.Contains(c, "PUBLIC_IP='203.0.113.10'") {
		t.Errorf("install create: %s", c)
	}
	// Target ssh without sshPrivateIp: the script finds the address.
	if c := install(t, "", "vm.example.com", "")["microk8s-addons"]["create"].StringValue(); !strings.Contains(c, "METALLB_ADDRESS=''") || strings.Contains(c, "DATA_MOUNT") {
		t.Errorf("addons create: %s", c)
	}
}

// Command runs for real here: a stand-in sudo that runs its arguments, the
// script on stdin, and a timeout. A step that outlives its timeout is killed
// and says what it waited for; a step that finishes keeps its exit code.
func TestCommandIsBoundedAndSaysWhatItWaitedFor(t *testing.T) {
	dir := t.TempDir()
	sudo := filepath.Join(dir, "sudo")
	if err := os.WriteFile(sudo, []byte("#!/bin/sh\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(script string, timeout int) (string, int) {
		cmd := exec.Command("sh", "-c", Command(map[string]string{"GREETING": "it's here"}, timeout, "the metallb addon"))
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		cmd.Stdin = strings.NewReader(script)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := run("echo \"$GREETING\"; exit 3\n", 5)
	if code != 3 || out != "it's here\n" {
		t.Fatalf("finished step: exit %d, %q", code, out)
	}
	out, code = run("sleep 30\n", 1)
	if code != 124 || !strings.Contains(out, "step timed out after 1s waiting for the metallb addon") {
		t.Fatalf("hung step: exit %d, %q", code, out)
	}
	for _, s := range Steps {
		if s.Timeout <= 0 || s.Waits == "" {
			t.Errorf("step %s unbounded", s.Name)
		}
	}
}
