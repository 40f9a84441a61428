package infra

// The data disk on AWS under mocks: where it is, what a replaced VM keeps,
// what destroy does, and the restore key. The upstream facts are named in
// infra/vm/datadisk.go; the disk itself is tested on loop devices in
// scripts/microk8s/datadisk_test.go.

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/cluster"
	mt "microk8s-platform/infra/internal/mocktest"
	"microk8s-platform/infra/tags"
	"microk8s-platform/infra/vm"
)

// runWith runs the program with mock options; it returns the program's error.
func runWith(t *testing.T, stack string, c mt.Config, opts ...func(*mt.Mocks)) (*mt.Mocks, error) {
	t.Helper()
	return mt.Run(t, stack, c, func(ctx *pulumi.Context) error {
		cfg, err := Load(ctx)
		if err != nil {
			return err
		}
		_, err = Platform(ctx, cfg)
		return err
	}, opts...)
}

// The volume sits in the subnet's zone (a volume attaches only in its own
// Availability Zone), encrypted gp3 of dataVolumeGiB; the attachment ties
// it to the instance without ever detaching it (skip_destroy); the
// instance goes first when replaced, and carries the volume's id in its
// user data so that a new volume (a restore) means a new VM.
func TestDataVolumeOutlivesTheVM(t *testing.T) {
	m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")))
	vol := m.One(t, "aws:ebs/volume:Volume", "vm-data")
	subnet := m.ByType("aws:ec2/subnet:Subnet")[0]
	if az := mt.Str(vol.Inputs, "availabilityZone"); az == "" || az != mt.Str(subnet.Inputs, "availabilityZone") {
		t.Errorf("volume in %q, subnet in %q", az, mt.Str(subnet.Inputs, "availabilityZone"))
	}
	for path, want := range map[string]string{"type": "gp3", "encrypted": "true", "size": "20"} {
		if got := mt.Str(vol.Inputs, path); got != want {
			t.Errorf("volume %s = %q, want %q", path, got, want)
		}
	}
	if got := mt.StringMap(vol.Inputs, "tags")[vm.DataTag]; got != "microk8s-platform-dev-data" {
		t.Errorf("volume tag %s = %q", vm.DataTag, got)
	}
	att := m.One(t, "aws:ec2/volumeAttachment:VolumeAttachment", "vm-data")
	if mt.Str(att.Inputs, "volumeId") != mt.DataVolumeID || mt.Str(att.Inputs, "instanceId") != "i-0abc" || mt.Str(att.Inputs, "skipDestroy") != "true" {
		t.Errorf("attachment %v", att.Inputs)
	}
	if mt.Get(att.Inputs, "forceDetach").HasValue() || mt.Get(att.Inputs, "stopInstanceBeforeDetaching").HasValue() {
		t.Error("the attachment force-detaches or stops the instance (a one-time spot instance cannot be stopped)")
	}
	inst := m.One(t, "aws:ec2/instance:Instance", "vm")
	if !inst.DeleteBeforeReplace {
		t.Error("a replaced instance is not deleted first: the new one could not attach the volume")
	}
	if ud := mt.Str(inst.Inputs, "userData"); !strings.Contains(ud, mt.DataVolumeID) || mt.Str(inst.Inputs, "userDataReplaceOnChange") != "true" {
		t.Errorf("user data %q does not replace the VM with the volume", ud)
	}
	// volumeTags would fight the data volume's tags (pulumi-aws v6.83.4
	// ec2/instance.go, volumeTags): the root disk is tagged in its block.
	if inst.Inputs.HasValue("volumeTags") {
		t.Error("the instance sets volumeTags")
	}
	if mt.StringMap(inst.Inputs, "rootBlockDevice.tags")["Name"] != "microk8s-platform-dev-vm-root" {
		t.Errorf("root disk tags %v", mt.StringMap(inst.Inputs, "rootBlockDevice.tags"))
	}
	// The SSH steps wait for the attachment; the mount step finds the
	// volume by its NVMe id.
	wait := m.One(t, "command:remote:Command", "microk8s-wait")
	if !slices.Contains(wait.Dependencies, att.URN) {
		t.Error("the remote steps do not wait for the attachment")
	}
	data := m.One(t, "command:remote:Command", "microk8s-data")
	if c := mt.Str(data.Inputs, "create"); !strings.Contains(c, "DEVICE='"+vm.DataDeviceAWS(mt.DataVolumeID)+"'") {
		t.Errorf("data step: %s", c)
	}
	if vol.Protect || vol.RetainOnDelete {
		t.Error("dev's data volume is protected or retained: destroy should delete it")
	}
}

// prod keeps its data: the volume is protected (destroy refuses) and
// retained (deleted from the stack, kept in the account).
func TestProdDataVolumeIsProtectedAndRetained(t *testing.T) {
	m, _ := run(t, "prod", userKeys(mt.StackFile(t, "prod")))
	vol := m.One(t, "aws:ebs/volume:Volume", "vm-data")
	if !vol.Protect || !vol.RetainOnDelete {
		t.Errorf("prod's data volume: protect %v, retainOnDelete %v", vol.Protect, vol.RetainOnDelete)
	}
}

// The AWS snapshot schedule: one DLM policy per stack, run as the role the
// bootstrap makes, snapshotting exactly the volume that carries the stack's
// data tag once a day, copying its tags (the project and stack tags are
// what the deploy role's restore needs) and keeping each snapshot for
// snapshotRetentionDays (dev 7, prod 30).
func TestAWSDataVolumeIsSnapshottedDaily(t *testing.T) {
	for st, days := range map[string]string{"dev": "7", "prod": "30"} {
		m, _ := run(t, st, userKeys(mt.StackFile(t, st)))
		vol := m.One(t, "aws:ebs/volume:Volume", "vm-data")
		pol := m.One(t, "aws:dlm/lifecyclePolicy:LifecyclePolicy", "vm-snapshots")
		in := pol.Inputs
		if got, want := mt.Str(in, "executionRoleArn"), "arn:aws:iam::"+mt.Account+":role/microk8s-platform-snapshots"; got != want {
			t.Errorf("%s: executionRoleArn %q, want %q (the bootstrap's role, vm.SnapshotRoleName)", st, got, want)
		}
		target := mt.StringMap(in, "policyDetails.targetTags")
		if len(target) != 1 || target[vm.DataTag] == "" || target[vm.DataTag] != mt.StringMap(vol.Inputs, "tags")[vm.DataTag] {
			t.Errorf("%s: the policy targets %v, the volume carries %s=%q", st, target, vm.DataTag, mt.StringMap(vol.Inputs, "tags")[vm.DataTag])
		}
		for path, want := range map[string]string{
			"state":                                             "ENABLED",
			"policyDetails.policyType":                          "EBS_SNAPSHOT_MANAGEMENT",
			"policyDetails.resourceTypes.0":                     "VOLUME",
			"policyDetails.schedules.0.name":                    vm.DLMScheduleName,
			"policyDetails.schedules.0.copyTags":                "true",
			"policyDetails.schedules.0.createRule.interval":     "24",
			"policyDetails.schedules.0.createRule.intervalUnit": "HOURS",
			"policyDetails.schedules.0.createRule.times":        vm.SnapshotStartUTC,
			"policyDetails.schedules.0.retainRule.interval":     days,
			"policyDetails.schedules.0.retainRule.intervalUnit": "DAYS",
			"tags.stack": st,
		} {
			if got := mt.Str(in, path); got != want {
				t.Errorf("%s: policy %s = %q, want %q", st, path, got, want)
			}
		}
		if mt.Get(in, "policyDetails.schedules.0.retainRule.count").HasValue() || len(mt.Get(in, "policyDetails.schedules").ArrayValue()) != 1 {
			t.Errorf("%s: want one schedule with age-based retention only: %v", st, mt.Get(in, "policyDetails.schedules"))
		}
		if cmd := vm.DataSnapshotsAWS(tags.Owner{Project: "microk8s-platform", Stack: st}, "us-east-1"); !strings.Contains(cmd, "--owner-ids self --filters Name=tag:"+vm.DataTag+",Values="+target[vm.DataTag]+" ") {
			t.Errorf("%s: the dataSnapshots command %q does not list the policy's snapshots", st, cmd)
		}
	}
}

// dataSnapshotId is checked to exist before anything is declared, and then
// reaches the volume.
func TestRestoreFromASnapshotIsOneKey(t *testing.T) {
	const snap = "snap-0123456789abcdef0"
	c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"dataSnapshotId": snap})
	m, err := runWith(t, "dev", c, func(m *mt.Mocks) { m.Snapshots = []string{snap} })
	if err != nil {
		t.Fatal(err)
	}
	restored := m.One(t, "aws:ebs/volume:Volume", "vm-data")
	if got := mt.Str(restored.Inputs, "snapshotId"); got != snap {
		t.Errorf("volume snapshotId = %q", got)
	}
	// Another snapshot restores again; unsetting the key after a restore
	// must not replace the restored volume with an empty one.
	if slices.Contains(restored.IgnoreChanges, "snapshotId") {
		t.Error("with dataSnapshotId set, a new snapshot id is ignored")
	}
	plain, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")))
	if !slices.Contains(plain.One(t, "aws:ebs/volume:Volume", "vm-data").IgnoreChanges, "snapshotId") {
		t.Error("without dataSnapshotId, unsetting it after a restore would replace the volume with an empty one")
	}
	m, err = runWith(t, "dev", c)
	if err == nil || !strings.Contains(err.Error(), "dataSnapshotId "+snap+": no such snapshot") {
		t.Fatalf("a missing snapshot: %v", err)
	}
	if len(m.ByType("aws:ebs/volume:Volume")) != 0 || len(m.ByType("aws:ec2/instance:Instance")) != 0 {
		t.Error("a volume or an instance was declared before the snapshot was found missing")
	}
}

func TestDataDiskConfigIsValidated(t *testing.T) {
	for kv, want := range map[[2]string]string{
		{"dataVolumeGiB", "10"}:        "dataVolumeGiB: 10 want 16 to 16384",
		{"dataSnapshotId", "vol-0123"}: "want an EBS snapshot id",
		{"snapshotRetentionDays", "0"}: "snapshotRetentionDays: 0 want 1 to 365",
		{"instanceType", "t2.large"}:   "is a Xen type",
	} {
		c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{kv[0]: kv[1]})
		_, err := runWith(t, "dev", c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s=%s: %v, want %q", kv[0], kv[1], err, want)
		}
	}
}

// On a VM with a data disk, PostgreSQL's data lives in a static volume at a
// fixed directory on it, pre-bound to the StatefulSet's claim: a new
// cluster on the same disk finds the same directory (the hostpath
// provisioner would name a new one after a new PersistentVolume). hostPath
// type Directory: without the disk mounted the pod fails rather than write
// to the root disk. Elsewhere, the cluster's own classes.
func TestPostgresDataIsAStaticVolumeOnTheDataDisk(t *testing.T) {
	m, _ := run(t, "dev", userKeys(mt.StackFile(t, "dev")))
	pv := m.One(t, "kubernetes:core/v1:PersistentVolume", "comments-db-data")
	for path, want := range map[string]string{
		"metadata.name":                      app.DataVolume,
		"spec.hostPath.path":                 cluster.DataMount + "/postgres",
		"spec.hostPath.type":                 "Directory",
		"spec.storageClassName":              app.DataClass,
		"spec.persistentVolumeReclaimPolicy": "Retain",
		"spec.claimRef.namespace":            app.Namespace,
		"spec.claimRef.name":                 "data-postgres-0",
		"spec.capacity.storage":              "5Gi",
	} {
		if got := mt.Str(pv.Inputs, path); got != want {
			t.Errorf("PersistentVolume %s = %q, want %q", path, got, want)
		}
	}
	sts := m.One(t, "kubernetes:apps/v1:StatefulSet", "comments-postgres")
	tmpl := mt.Get(sts.Inputs, "spec.volumeClaimTemplates").ArrayValue()
	if len(tmpl) != 1 || mt.Str(tmpl[0].ObjectValue(), "spec.storageClassName") != app.DataClass || mt.Str(tmpl[0].ObjectValue(), "metadata.name") != "data" {
		t.Errorf("claim template %v", tmpl)
	}
	if got := "data-" + mt.Str(sts.Inputs, "metadata.name") + "-0"; got != app.DataClaim {
		t.Errorf("the StatefulSet's claim is %s, the volume is bound to %s", got, app.DataClaim)
	}
	if !slices.Contains(sts.Dependencies, pv.URN) {
		t.Error("the StatefulSet does not wait for its volume")
	}
	if pv.Protect {
		t.Error("dev's volume is protected")
	}
	mp, _ := run(t, "prod", userKeys(mt.StackFile(t, "prod")))
	if !mp.One(t, "kubernetes:core/v1:PersistentVolume", "comments-db-data").Protect {
		t.Error("prod's database volume is not protected")
	}
	if len(mp.ByType("kubernetes:storage.k8s.io/v1:StorageClass")) != 0 {
		t.Error("prod on a data disk still declares the hostpath Retain class")
	}
}

func gcpStack(t *testing.T, stack string, extra map[string]string) mt.Config {
	kv := map[string]string{"target": "gcp", "aws:region": "", "gcp:project": "acme-platform", "gcp:region": "europe-west1"}
	for k, v := range extra {
		kv[k] = v
	}
	return userKeys(mt.StackFile(t, stack)).Set(kv)
}

// GCP: a pd-balanced disk in the VM's zone, attached inline under a fixed
// device name (no autoDelete: pulumi-gcp v9.6.0 InstanceAttachedDisk has
// none), the VM replaced delete-before-replace when its disk changes, the
// mount step finding it at /dev/disk/by-id/google-<device name>; prod's
// protected and retained; a restore checked first and made under another
// name, so the new disk exists before the old VM goes.
func TestGCPDataDiskOutlivesTheVM(t *testing.T) {
	m, _ := run(t, "dev", gcpStack(t, "dev", nil))
	disk := m.One(t, "gcp:compute/disk:Disk", "vm-data")
	inst := m.One(t, "gcp:compute/instance:Instance", "vm")
	if mt.Str(disk.Inputs, "zone") == "" || mt.Str(disk.Inputs, "zone") != mt.Str(inst.Inputs, "zone") || mt.Str(disk.Inputs, "type") != "pd-balanced" || mt.Str(disk.Inputs, "size") != "20" {
		t.Errorf("disk %v", disk.Inputs)
	}
	att := mt.Get(inst.Inputs, "attachedDisks").ArrayValue()
	if len(att) != 1 || mt.Str(att[0].ObjectValue(), "deviceName") != vm.GCPDataDeviceName || !strings.HasSuffix(mt.Str(att[0].ObjectValue(), "source"), "/disks/microk8s-platform-dev-data") {
		t.Fatalf("attachedDisks %v", att)
	}
	if att[0].ObjectValue().HasValue("autoDelete") {
		t.Error("the attached disk sets autoDelete")
	}
	// The SDK we pin has no autoDelete on an inline attached disk at all
	// (pulumi-gcp v9.6.0 compute.InstanceAttachedDisk), so GCE's default
	// for attached disks holds: deleting the VM keeps the disk.
	if _, ok := reflect.TypeOf(compute.InstanceAttachedDiskArgs{}).FieldByName("AutoDelete"); ok {
		t.Error("pulumi-gcp's InstanceAttachedDisk has autoDelete now: set it false explicitly")
	}
	if !inst.DeleteBeforeReplace {
		t.Error("a replaced GCE instance is not deleted first")
	}
	data := m.One(t, "command:remote:Command", "microk8s-data")
	// GCE's guest environment names an attached disk
	// /dev/disk/by-id/google-<device name> (GoogleCloudPlatform/guest-configs,
	// src/lib/udev/rules.d/65-gce-disk-naming.rules); not runnable here.
	if c := mt.Str(data.Inputs, "create"); !strings.Contains(c, "DEVICE='/dev/disk/by-id/google-platform-data'") || !slices.Contains(mt.Strings(data.Inputs, "triggers"), mt.GCPDataDiskID) {
		t.Errorf("data step: %s %v", c, mt.Strings(data.Inputs, "triggers"))
	}
	m.One(t, "kubernetes:core/v1:PersistentVolume", "comments-db-data")
	if disk.Protect || disk.RetainOnDelete {
		t.Error("dev's disk is protected or retained")
	}

	// A daily snapshot, kept snapshotRetentionDays, attached to the disk;
	// its snapshots expire even after the disk is deleted.
	pol := m.One(t, "gcp:compute/resourcePolicy:ResourcePolicy", "vm-snapshots")
	for path, want := range map[string]string{
		"snapshotSchedulePolicy.schedule.dailySchedule.daysInCycle":      "1",
		"snapshotSchedulePolicy.retentionPolicy.maxRetentionDays":        "7",
		"snapshotSchedulePolicy.retentionPolicy.onSourceDiskDelete":      "APPLY_RETENTION_POLICY",
		"snapshotSchedulePolicy.snapshotProperties.labels.stack":         "dev",
		"snapshotSchedulePolicy.snapshotProperties.storageLocations":     "europe-west1",
		"snapshotSchedulePolicy.snapshotProperties.labels." + vm.DataTag: "microk8s-platform-dev-data",
	} {
		if got := mt.Str(pol.Inputs, path); got != want {
			t.Errorf("snapshot schedule %s = %q, want %q", path, got, want)
		}
	}
	pa := m.One(t, "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment", "vm-snapshots")
	if mt.Str(pa.Inputs, "disk") != mt.Str(disk.Inputs, "name") || mt.Str(pa.Inputs, "name") != mt.Str(pol.Inputs, "name") {
		t.Errorf("schedule attachment %v", pa.Inputs)
	}

	mp, _ := run(t, "prod", gcpStack(t, "prod", nil))
	if d := mp.One(t, "gcp:compute/disk:Disk", "vm-data"); !d.Protect || !d.RetainOnDelete {
		t.Error("prod's disk is not protected and retained")
	}
	if got := mt.Str(mp.One(t, "gcp:compute/resourcePolicy:ResourcePolicy", "vm-snapshots").Inputs, "snapshotSchedulePolicy.retentionPolicy.maxRetentionDays"); got != "30" {
		t.Errorf("prod keeps snapshots %s days, want 30", got)
	}

	const snap = "platform-data-20261201"
	mr, err := runWith(t, "dev", gcpStack(t, "dev", map[string]string{"dataSnapshotId": snap}), func(m *mt.Mocks) { m.Snapshots = []string{snap} })
	if err != nil {
		t.Fatal(err)
	}
	rd := mr.One(t, "gcp:compute/disk:Disk", "vm-data")
	if mt.Str(rd.Inputs, "snapshot") != snap || mt.Str(rd.Inputs, "name") == mt.Str(disk.Inputs, "name") {
		t.Errorf("restored disk %v", rd.Inputs)
	}
	if len(rd.IgnoreChanges) != 0 || !slices.Contains(disk.IgnoreChanges, "snapshot") || !slices.Contains(disk.IgnoreChanges, "name") {
		t.Errorf("ignoreChanges: restoring %v, plain %v; unsetting the key after a restore must keep the restored disk", rd.IgnoreChanges, disk.IgnoreChanges)
	}
	if _, err := runWith(t, "dev", gcpStack(t, "dev", map[string]string{"dataSnapshotId": snap})); err == nil || !strings.Contains(err.Error(), "no such snapshot") {
		t.Errorf("a missing snapshot: %v", err)
	}
}

// Target ssh: no disk of ours, so the data goes in a host directory
// (dataDir, default /var/lib/platform-data) with the same static volumes.
// The data step makes the directories there (no DEVICE: nothing is
// formatted or mounted), PostgreSQL's volume and Prometheus's point into
// it, and destroy leaves the host alone: no remote step has a delete
// command (MicroK8s stays installed), and the volumes are Retain, so the
// directories and their data stay (infra/vm/README.md, "Target ssh").
func TestSSHDataLivesInAHostDirectory(t *testing.T) {
	for dir, set := range map[string]map[string]string{
		vm.DataMount:    {},
		"/srv/platform": {"dataDir": "/srv/platform"},
	} {
		c := userKeys(mt.StackFile(t, "dev")).Set(map[string]string{"target": "ssh", "sshHost": "192.0.2.50", "sshUser": "vagrant"}).Set(set)
		m, _ := run(t, "dev", c)
		data := m.One(t, "command:remote:Command", "microk8s-data")
		cr := mt.Str(data.Inputs, "create")
		if !strings.Contains(cr, "MOUNT_POINT='"+dir+"'") || strings.Contains(cr, "DEVICE=") || !strings.Contains(cr, "DIRS='postgres:999:999 prometheus:1000:2000'") {
			t.Errorf("%s: data step %q", dir, cr)
		}
		if cr := mt.Str(m.One(t, "command:remote:Command", "microk8s-addons").Inputs, "create"); !strings.Contains(cr, "DATA_MOUNT='"+dir+"'") {
			t.Errorf("%s: Prometheus's volume is not in the data directory: %q", dir, cr)
		}
		pv := m.One(t, "kubernetes:core/v1:PersistentVolume", "comments-db-data")
		if got := mt.Str(pv.Inputs, "spec.hostPath.path"); got != dir+"/postgres" || mt.Str(pv.Inputs, "spec.persistentVolumeReclaimPolicy") != "Retain" {
			t.Errorf("%s: PostgreSQL's volume at %q, reclaim %q", dir, got, mt.Str(pv.Inputs, "spec.persistentVolumeReclaimPolicy"))
		}
		for _, cmd := range m.ByType("command:remote:Command") {
			if strings.HasPrefix(cmd.Name, "microk8s-") && mt.Get(cmd.Inputs, "delete").HasValue() {
				t.Errorf("%s: %s runs a command on destroy: %q", dir, cmd.Name, mt.Str(cmd.Inputs, "delete"))
			}
		}
	}
}
