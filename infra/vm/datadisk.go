package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dlm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ebs"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-gcp/sdk/v9/go/gcp/compute"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/tags"
)

// The data disk outlives the VM. PostgreSQL's and Prometheus's data live
// on it (scripts/microk8s/mount-data-disk.sh mounts it before MicroK8s is
// installed), and the root disk keeps only the OS, images and MicroK8s, so
// a spot reclaim, a replaced instance or a lost host loses no data.
//
// On AWS: an encrypted gp3 volume in the subnet's zone (a volume attaches
// only to an instance in its own Availability Zone), attached at
// DataDeviceName. The attachment's device_name, instance_id and volume_id
// are ForceNew (terraform-provider-aws v5.100.0
// internal/service/ec2/ebs_volume_attachment.go), so a new instance gets a
// new attachment to the same volume. Its delete skips DetachVolume
// (skip_destroy: "if _, ok := d.GetOk("skip_destroy"); ok { return diags }",
// same file): detaching a mounted volume from a running instance waits on
// the guest, a one-time spot instance cannot be stopped first, and a forced
// detach risks the filesystem. The instance goes first instead
// (DeleteBeforeReplace; on destroy it depends on the volume, so it is
// deleted before it), and its termination releases the volume. The provider
// tier (infra/backend/providercalls_test.go) runs v5.100.0 itself on moto
// and records no DetachVolume on any replace or destroy: the needs table
// has none, and the tier fails on a call the table lacks.

// DataDeviceName is the attachment's device name. Nitro instances ignore
// it for the NVMe name (the mount step finds the volume by id), but the API
// requires one.
const DataDeviceName = "/dev/sdf"

// DataTag marks a stack's data volume; the snapshot policy targets it.
const DataTag = "microk8s-platform-data"

// dataDiskOptions are the data disk's resource options on either cloud.
// Retained: destroy never deletes the stack's data; it refuses while the
// disk is protected, and leaves the disk behind when told to go on. Without
// dataSnapshotId, the properties a restore sets are ignored: unsetting the
// key after a restore must not replace the restored disk with an empty one
// (the snapshot is ForceNew); setting another snapshot still restores.
func dataDiskOptions(retain bool, snapshotID string, restoreProps ...string) []pulumi.ResourceOption {
	var opts []pulumi.ResourceOption
	if retain {
		opts = append(opts, pulumi.Protect(true), pulumi.RetainOnDelete(true))
	}
	if snapshotID == "" {
		opts = append(opts, pulumi.IgnoreChanges(restoreProps))
	}
	return opts
}

type awsData struct {
	volume   *ebs.Volume
	userData pulumi.StringOutput
}

func newAWSDataVolume(ctx *pulumi.Context, name string, args AWSArgs, p pulumi.ResourceOrInvokeOption) (*awsData, error) {
	o := args.Owner
	va := &ebs.VolumeArgs{
		AvailabilityZone: args.AvailabilityZone,
		Size:             pulumi.Int(args.DataVolumeGiB),
		Type:             pulumi.String("gp3"),
		Encrypted:        pulumi.Bool(true),
		Tags:             tags.Merge(o.AWS("data"), map[string]string{DataTag: o.Prefix("data")}),
	}
	if args.DataSnapshotID != "" {
		// Checked before anything changes: a mistyped id fails the
		// preview, not the update halfway through.
		snap, err := ebs.LookupSnapshot(ctx, &ebs.LookupSnapshotArgs{SnapshotIds: []string{args.DataSnapshotID}}, p)
		if err != nil {
			return nil, fmt.Errorf("vm: dataSnapshotId %s: no such snapshot in this account and region (aws ec2 describe-snapshots --snapshot-ids %s): %w", args.DataSnapshotID, args.DataSnapshotID, err)
		}
		if snap.VolumeSize > args.DataVolumeGiB {
			return nil, fmt.Errorf("vm: dataSnapshotId %s is of a %d GiB volume; dataVolumeGiB (%d) must be at least that", args.DataSnapshotID, snap.VolumeSize, args.DataVolumeGiB)
		}
		va.SnapshotId = pulumi.String(args.DataSnapshotID)
	}
	opts := dataDiskOptions(args.RetainData, args.DataSnapshotID, "snapshotId")
	vol, err := ebs.NewVolume(ctx, name+"-data", va, append(opts, p)...)
	if err != nil {
		return nil, err
	}
	userData := vol.ID().ApplyT(func(id pulumi.ID) string {
		return "#cloud-config\n# microk8s-platform data volume: " + string(id) + "\n"
	}).(pulumi.StringOutput)
	return &awsData{volume: vol, userData: userData}, nil
}

func attachAWSDataVolume(ctx *pulumi.Context, name string, inst *ec2.Instance, d *awsData, p pulumi.ResourceOrInvokeOption) (*ec2.VolumeAttachment, error) {
	return ec2.NewVolumeAttachment(ctx, name+"-data", &ec2.VolumeAttachmentArgs{
		DeviceName:  pulumi.String(DataDeviceName),
		InstanceId:  inst.ID(),
		VolumeId:    d.volume.ID(),
		SkipDestroy: pulumi.Bool(true),
	}, p)
}

// SnapshotRoleName is the IAM role DLM runs the stacks' snapshot policies
// as: trusted by dlm.amazonaws.com with the managed policy
// service-role/AWSDataLifecycleManagerServiceRole. The bootstrap
// (infra/backend) makes it, because the CI roles cannot create roles; each
// deploy role may pass exactly this one, and only to DLM.
func SnapshotRoleName(project string) string { return project + "-snapshots" }

// SnapshotRoleARN is that role's ARN in account.
func SnapshotRoleARN(account, project string) string {
	return "arn:aws:iam::" + account + ":role/" + SnapshotRoleName(project)
}

// DLMScheduleName is the policy's one schedule. DLM stops managing (and so
// never deletes) the snapshots of a schedule that is renamed (EBS User
// Guide, "Modify Amazon Data Lifecycle Manager policies"): keep it fixed.
const DLMScheduleName = "daily"

// awsSnapshotPolicy snapshots the stack's data volume every day at
// SnapshotStartUTC and deletes each snapshot SnapshotRetentionDays after it
// was taken (age-based retention). It finds the volume by its DataTag,
// which no other stack's volume carries, and copies the volume's tags to
// each snapshot (copyTags): the project and stack tags are what lets the
// stack's deploy role restore from it (infra/backend RestoreOwnSnapshot).
// A crash-consistent snapshot of the one volume that holds PostgreSQL's
// data directory and its WAL is a valid backup (PostgreSQL documentation,
// "File System Level Backup"; see gcpSnapshotSchedule).
//
// Deleting the policy (dev's destroy) deletes none of its snapshots, and
// they no longer expire (EBS User Guide, "Delete Amazon Data Lifecycle
// Manager policies": "If you delete a policy, the snapshots or AMIs created
// by that policy are not automatically deleted"); and while the policy
// lives, age-based retention keeps the last snapshot of a deleted volume.
// infra/vm/README.md says how to delete them.
func awsSnapshotPolicy(ctx *pulumi.Context, name string, args AWSArgs, p pulumi.ResourceOrInvokeOption) (*dlm.LifecyclePolicy, error) {
	o := args.Owner
	id, err := aws.GetCallerIdentity(ctx, nil, p)
	if err != nil {
		return nil, fmt.Errorf("vm: the account id for the snapshot role: %w", err)
	}
	return dlm.NewLifecyclePolicy(ctx, name+"-snapshots", &dlm.LifecyclePolicyArgs{
		Description:      pulumi.String("Daily snapshots of " + o.Prefix("data")),
		ExecutionRoleArn: pulumi.String(SnapshotRoleARN(id.AccountId, o.Project)),
		State:            pulumi.String("ENABLED"),
		PolicyDetails: &dlm.LifecyclePolicyPolicyDetailsArgs{
			PolicyType:    pulumi.String("EBS_SNAPSHOT_MANAGEMENT"),
			ResourceTypes: pulumi.StringArray{pulumi.String("VOLUME")},
			TargetTags:    pulumi.StringMap{DataTag: pulumi.String(o.Prefix("data"))},
			Schedules: dlm.LifecyclePolicyPolicyDetailsScheduleArray{&dlm.LifecyclePolicyPolicyDetailsScheduleArgs{
				Name:     pulumi.String(DLMScheduleName),
				CopyTags: pulumi.Bool(true),
				CreateRule: &dlm.LifecyclePolicyPolicyDetailsScheduleCreateRuleArgs{
					Interval:     pulumi.Int(24),
					IntervalUnit: pulumi.String("HOURS"),
					Times:        pulumi.String(SnapshotStartUTC),
				},
				RetainRule: &dlm.LifecyclePolicyPolicyDetailsScheduleRetainRuleArgs{
					Interval:     pulumi.Int(args.SnapshotRetentionDays),
					IntervalUnit: pulumi.String("DAYS"),
				},
			}},
		},
		Tags: o.AWS("snapshots"),
	}, p)
}

// DataSnapshotsAWS is the command that lists a stack's snapshots.
func DataSnapshotsAWS(o tags.Owner, region string) string {
	return fmt.Sprintf("aws ec2 describe-snapshots --region %s --owner-ids self --filters Name=tag:%s,Values=%s --query 'sort_by(Snapshots,&StartTime)[].[SnapshotId,StartTime,VolumeSize]' --output table",
		region, DataTag, o.Prefix("data"))
}

// On GCP: a pd-balanced disk in the VM's zone, attached inline with a fixed
// device name, so the guest sees it at /dev/disk/by-id/google-<name>
// (GCE's guest environment udev rules: "google-" and the device name). A
// restore makes a disk under another name (the snapshot's hash in it), so
// the new disk exists before the VM is replaced and the old one is deleted
// only after.

// GCPDataDeviceName is the data disk's device name on the instance.
const GCPDataDeviceName = "platform-data"

// GCPDataDevice is where the guest finds it.
const GCPDataDevice = "/dev/disk/by-id/google-" + GCPDataDeviceName

func newGCPDataDisk(ctx *pulumi.Context, name string, args GCPArgs, p pulumi.ResourceOrInvokeOption) (*compute.Disk, error) {
	o := args.Owner
	da := &compute.DiskArgs{
		Name:    pulumi.String(o.Prefix("data")),
		Project: pulumi.String(args.Project),
		Zone:    pulumi.String(args.Zone),
		Size:    pulumi.Int(args.DataVolumeGiB),
		Type:    pulumi.String("pd-balanced"),
		Labels:  tags.Merge(o.GCP(), map[string]string{DataTag: o.Prefix("data")}),
	}
	if args.DataSnapshotID != "" {
		snap := args.DataSnapshotID
		got, err := compute.LookupSnapshot(ctx, &compute.LookupSnapshotArgs{Name: &snap, Project: &args.Project}, p)
		if err != nil {
			return nil, fmt.Errorf("vm: dataSnapshotId %s: no such snapshot in project %s (gcloud compute snapshots describe %s): %w", snap, args.Project, snap, err)
		}
		if got.DiskSizeGb > args.DataVolumeGiB {
			return nil, fmt.Errorf("vm: dataSnapshotId %s is of a %d GiB disk; dataVolumeGiB (%d) must be at least that", snap, got.DiskSizeGb, args.DataVolumeGiB)
		}
		sum := sha256.Sum256([]byte(snap))
		da.Name = pulumi.String(o.Prefix("data-" + hex.EncodeToString(sum[:4])))
		da.Snapshot = pulumi.String(snap)
	}
	opts := dataDiskOptions(args.RetainData, args.DataSnapshotID, "snapshot", "name")
	return compute.NewDisk(ctx, name+"-data", da, append(opts, p)...)
}

// gcpSnapshotSchedule takes a snapshot of the disk every day and keeps each
// for args.SnapshotRetentionDays: a crash-consistent snapshot of the one
// disk that holds PostgreSQL's data directory and its WAL is a valid
// backup (PostgreSQL documentation, "File System Level Backup": with a
// consistent snapshot "the database server will think it had crashed" and
// replays the WAL). APPLY_RETENTION_POLICY: when the disk is deleted its
// snapshots still expire. Deleting the schedule itself (destroy) keeps the
// snapshots it made for good (Compute Engine documentation, "Manage
// snapshot schedules": "If you delete a snapshot schedule, all
// auto-generated snapshots associated with the snapshot schedule are kept
// permanently"); infra/vm/README.md says how to delete them.
func gcpSnapshotSchedule(ctx *pulumi.Context, name string, args GCPArgs, disk *compute.Disk, p pulumi.ResourceOrInvokeOption) (*compute.ResourcePolicy, error) {
	o := args.Owner
	pol, err := compute.NewResourcePolicy(ctx, name+"-snapshots", &compute.ResourcePolicyArgs{
		Name:    pulumi.String(o.Prefix("snapshots")),
		Project: pulumi.String(args.Project),
		Region:  pulumi.String(args.Region),
		SnapshotSchedulePolicy: &compute.ResourcePolicySnapshotSchedulePolicyArgs{
			Schedule: &compute.ResourcePolicySnapshotSchedulePolicyScheduleArgs{
				DailySchedule: &compute.ResourcePolicySnapshotSchedulePolicyScheduleDailyScheduleArgs{
					DaysInCycle: pulumi.Int(1),
					StartTime:   pulumi.String(SnapshotStartUTC),
				},
			},
			RetentionPolicy: &compute.ResourcePolicySnapshotSchedulePolicyRetentionPolicyArgs{
				MaxRetentionDays:   pulumi.Int(args.SnapshotRetentionDays),
				OnSourceDiskDelete: pulumi.String("APPLY_RETENTION_POLICY"),
			},
			SnapshotProperties: &compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesArgs{
				Labels:           tags.Merge(o.GCP(), map[string]string{DataTag: o.Prefix("data")}),
				StorageLocations: pulumi.String(args.Region),
			},
		},
	}, p)
	if err != nil {
		return nil, err
	}
	_, err = compute.NewDiskResourcePolicyAttachment(ctx, name+"-snapshots", &compute.DiskResourcePolicyAttachmentArgs{
		Name:    pol.Name,
		Disk:    disk.Name,
		Zone:    pulumi.String(args.Zone),
		Project: pulumi.String(args.Project),
	}, p)
	return pol, err
}

// SnapshotStartUTC is when the daily snapshot starts (UTC, on the hour).
const SnapshotStartUTC = "03:00"
