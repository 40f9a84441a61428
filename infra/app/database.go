package app

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/kube"
	"microk8s-platform/service/dbroles"
)

// The database tier's names and sizes.
const (
	// DatabaseAdmin is the image's superuser (POSTGRES_USER left at its
	// default). Only the roles sidecar and people (kubectl exec, psql over
	// the pod's socket) use it; the service never does.
	DatabaseAdmin = "postgres"
	// PostgresImage: the newest PostgreSQL 16 the official image ships, read
	// from docker-library/postgres 16/bookworm/Dockerfile (ENV PG_VERSION
	// 16.13-1.pgdg12+1, repository snapshot of 2026-02-26).
	PostgresImage = "postgres:16.13-bookworm"
	// RetainStorageClass is the class prod's database volume uses:
	// MicroK8s' hostpath provisioner with reclaimPolicy Retain.
	RetainStorageClass = "comments-db-retain"
	// HostpathProvisioner is MicroK8s' provisioner name
	// (canonical/microk8s-core-addons addons/hostpath-storage/storage.yaml;
	// canonical/hostpath-provisioner hostpath-provisioner.go: the PV takes
	// the class's reclaimPolicy unless PV_RECLAIM_POLICY is set, which the
	// addon leaves commented out, and Delete runs rm -rf on the directory).
	HostpathProvisioner = "microk8s.io/hostpath"
	// CredentialsAnnotation on a pod template carries a one-way digest of
	// the credentials the pods use, so changing them rolls the pods.
	CredentialsAnnotation = "comments.microk8s-platform/credentials-digest"
	// secretsDir is where the roles sidecar reads the Secret's files.
	secretsDir = "/etc/comments-db"
	pgdata     = "/var/lib/postgresql/data/pgdata"
	pgSocket   = "/var/run/postgresql"
)

// Secret keys: each container gets only the ones it uses.
const (
	KeyAppPassword   = dbroles.AppPasswordFile   // the roles sidecar
	KeyAdminPassword = dbroles.AdminPasswordFile // postgres (first start) and the roles sidecar; only when dbAdminPassword is set
	KeyDatabaseURL   = "DATABASE_URL"            // the service
)

// Probe sizing. PostgreSQL's start-up probe gives crash recovery (WAL
// replay after a node restart or a spot stop) up to 15 minutes before
// liveness takes over; liveness only asks whether the postmaster answers at
// all, readiness whether it accepts connections.
const (
	pgStartupPeriod, pgStartupFailures = 10, 90
	// The service waits for its database this long (DATABASE_WAIT), and its
	// start-up probe (on /readyz) allows a minute more, so the process gives
	// up with a clear message before the kubelet would kill it.
	ServiceDatabaseWaitSeconds  = 240
	serviceStartupPeriod        = 5
	serviceStartupFailures      = (ServiceDatabaseWaitSeconds + 60) / serviceStartupPeriod
	credentialsDigestIterations = 200_000
	credentialsDigestBytes      = 16
	dbRetainPolicy              = "Retain"
)

// credentialsDigest is a one-way digest of the credentials, for a pod
// template annotation that changes whenever they do. The annotation is
// readable by anyone who may read Deployments, a wider group than those who
// may read Secrets, so a plain sha256 of the password will not do: anyone
// could test guesses against it at GPU speed, and equal passwords would show
// up as equal digests across stacks. PBKDF2-HMAC-SHA256 with a per-stack salt
// and 200k iterations makes each guess cost as much as a login would and
// ties the digest to the stack; with the random passwords the README
// prescribes (openssl rand -base64 24, 144 bits) guessing is hopeless, and
// the salt is not a secret because it does not need to be. The output stays
// a Pulumi secret (it is derived from one) in the state.
func credentialsDigest(salt string, inputs ...pulumi.StringOutput) pulumi.StringOutput {
	all := make([]any, len(inputs))
	for i, in := range inputs {
		all[i] = in
	}
	return pulumi.All(all...).ApplyT(func(vs []any) (string, error) {
		var material []byte
		for _, v := range vs {
			s := v.(string)
			material = fmt.Appendf(material, "%d:%s;", len(s), s) // unambiguous concatenation
		}
		key, err := pbkdf2.Key(sha256.New, string(material), []byte("microk8s-platform/comments-db/"+salt), credentialsDigestIterations, credentialsDigestBytes)
		if err != nil {
			return "", err
		}
		return "pbkdf2-sha256:" + hex.EncodeToString(key), nil
	}).(pulumi.StringOutput)
}

// pgPortString is PostgresPort for the probe's command line.
var pgPortString = strconv.Itoa(PostgresPort)

// dbStorage says where the database's data lives and what destroy does to it.
type dbStorage struct {
	class   pulumi.StringPtrInput // nil: the cluster's default class
	protect bool
	volume  pulumi.Resource // the static volume on the data disk, or nil
}

// storage declares, for dbReclaimPolicy Retain, the StorageClass whose
// volumes outlive their claims. A hostpath PersistentVolume is a directory
// on the node; with the default class's Delete policy, deleting the claim
// (pulumi destroy deletes the namespace, and the claim with it) runs rm -rf
// on it.
func storage(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (dbStorage, error) {
	if args.DataDir != "" {
		return dataDiskStorage(ctx, name, args, opts...)
	}
	if args.DBReclaimPolicy != dbRetainPolicy {
		return dbStorage{}, nil
	}
	sc, err := storagev1.NewStorageClass(ctx, name+"-db-retain", &storagev1.StorageClassArgs{
		Metadata:          Database.Meta(RetainStorageClass, ""),
		Provisioner:       pulumi.String(HostpathProvisioner),
		ReclaimPolicy:     pulumi.String(dbRetainPolicy),
		VolumeBindingMode: pulumi.String("WaitForFirstConsumer"),
		// The hostpath provisioner cannot grow a volume (it does not even
		// enforce the size: the volume is a directory on the root disk).
		AllowVolumeExpansion: pulumi.Bool(false),
	}, append(opts, pulumi.Protect(true))...)
	if err != nil {
		return dbStorage{}, err
	}
	return dbStorage{class: sc.Metadata.Name(), protect: true}, nil
}

// DataClass is the StorageClass of the data disk's static volumes: no
// provisioner, Retain. The addons step declares it (it is Prometheus's
// too: scripts/microk8s/enable-addons.sh).
const DataClass = "platform-data"

// DataVolume is PostgreSQL's static PersistentVolume on the data disk.
const DataVolume = "platform-data-postgres"

// DataClaim is the claim the StatefulSet's template makes for its pod
// (<template>-<statefulset>-<ordinal>), which DataVolume is bound to.
const DataClaim = "data-" + DatabaseService + "-0"

// dataDiskStorage: the data on the VM's own data disk, which outlives the
// VM. The hostpath provisioner names each directory after the generated
// PersistentVolume (<ns>-<pvc>-<pv>), so a new cluster on the same disk
// would make a new, empty one. A static volume instead, at a fixed
// directory (args.DataDir), pre-bound to the claim (claimRef), of hostPath
// type Directory: if the disk is not mounted the directory does not exist
// and the pod fails to start rather than write to the root disk. Retain:
// deleting the claim never deletes the data. The directory is owned by
// the image's user (the mount step): hostPath ignores fsGroup.
func dataDiskStorage(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (dbStorage, error) {
	retain := args.DBReclaimPolicy == dbRetainPolicy
	pvOpts := opts
	if retain {
		pvOpts = append(append([]pulumi.ResourceOption{}, opts...), pulumi.Protect(true))
	}
	pv, err := corev1.NewPersistentVolume(ctx, name+"-db-data", &corev1.PersistentVolumeArgs{
		Metadata: Database.Meta(DataVolume, ""),
		Spec: corev1.PersistentVolumeSpecArgs{
			Capacity:                      pulumi.StringMap{"storage": pulumi.Sprintf("%dGi", args.DBStorageGiB)},
			AccessModes:                   pulumi.StringArray{pulumi.String("ReadWriteOnce")},
			PersistentVolumeReclaimPolicy: pulumi.String("Retain"),
			StorageClassName:              pulumi.String(DataClass),
			HostPath:                      &corev1.HostPathVolumeSourceArgs{Path: pulumi.String(args.DataDir), Type: pulumi.String("Directory")},
			ClaimRef:                      &corev1.ObjectReferenceArgs{Namespace: pulumi.String(Namespace), Name: pulumi.String(DataClaim)},
		},
	}, pvOpts...)
	if err != nil {
		return dbStorage{}, err
	}
	return dbStorage{class: pulumi.String(DataClass), protect: retain, volume: pv}, nil
}

// database: PostgreSQL as a one-replica StatefulSet behind a headless
// Service, with the roles sidecar (service/dbroles) next to it and a
// PodDisruptionBudget that lets a node drain evict it.
func database(ctx *pulumi.Context, name string, args Args, secret *corev1.Secret, opts ...pulumi.ResourceOption) (*appsv1.StatefulSet, error) {
	db := Database
	if _, err := corev1.NewService(ctx, name+"-postgres", &corev1.ServiceArgs{
		Metadata: db.Meta(DatabaseService, Namespace),
		Spec: corev1.ServiceSpecArgs{
			ClusterIP: pulumi.String("None"), // headless: the StatefulSet's stable name
			Selector:  Database.Selector(),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("postgres"), Port: pulumi.Int(PostgresPort), TargetPort: pulumi.String("postgres"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, opts...); err != nil {
		return nil, err
	}
	st, err := storage(ctx, name, args, opts...)
	if err != nil {
		return nil, err
	}

	pgIsReady := func(cmd string, period, timeout, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{
			Exec:             &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"bash", "-c", cmd})},
			PeriodSeconds:    pulumi.Int(period),
			TimeoutSeconds:   pulumi.Int(timeout),
			FailureThreshold: pulumi.Int(failures),
		}
	}
	// pg_isready exits 0 when the server accepts connections, 1 when it
	// answers but rejects them (starting, recovering, shutting down), 2 when
	// it does not answer. Readiness asks over TCP on 127.0.0.1: on a first
	// boot the image initialises the data directory with a temporary
	// server listening on the socket only (docker-entrypoint.sh
	// docker_temp_server_start: listen_addresses=''), which the socket
	// would report ready while the service cannot reach it yet.
	accepting := "exec pg_isready -q -h 127.0.0.1 -p " + pgPortString + " -d postgres"
	const answering = "pg_isready -q -h " + pgSocket + " -d postgres; [ $? -le 1 ]"

	secretEnv := func(env, key string) corev1.EnvVarArgs {
		return corev1.EnvVarArgs{Name: pulumi.String(env), ValueFrom: &corev1.EnvVarSourceArgs{
			SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: secret.Metadata.Name(), Key: pulumi.String(key)},
		}}
	}
	plainEnv := func(env, v string) corev1.EnvVarArgs {
		return corev1.EnvVarArgs{Name: pulumi.String(env), Value: pulumi.String(v)}
	}
	pgEnv := corev1.EnvVarArray{plainEnv("PGDATA", pgdata)}
	items := corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(KeyAppPassword), Path: pulumi.String(dbroles.AppPasswordFile)}}
	if args.DBAdminPassword != nil {
		// Read by the image only when it initialises an empty data
		// directory; later changes reach the role through the sidecar.
		pgEnv = append(pgEnv, secretEnv("POSTGRES_PASSWORD", KeyAdminPassword))
		items = append(items, corev1.KeyToPathArgs{Key: pulumi.String(KeyAdminPassword), Path: pulumi.String(dbroles.AdminPasswordFile)})
	} else {
		// No admin password configured: the superuser gets a random one
		// at initialisation that nobody knows (the image's file_env reads
		// POSTGRES_PASSWORD_FILE); administer through the pod's socket.
		pgEnv = append(pgEnv, plainEnv("POSTGRES_PASSWORD_FILE", "/proc/sys/kernel/random/uuid"))
	}
	fileProbe := func(cmd string, period, failures int) *corev1.ProbeArgs {
		return pgIsReady(cmd, period, 5, failures)
	}
	mount := func(vol, path string, ro bool) corev1.VolumeMountArgs {
		return corev1.VolumeMountArgs{Name: pulumi.String(vol), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(ro)}
	}
	emptyDir := func(n string) corev1.VolumeArgs {
		return corev1.VolumeArgs{Name: pulumi.String(n), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{}}
	}
	statefulOpts := opts
	if st.protect {
		statefulOpts = append(append([]pulumi.ResourceOption{}, opts...), pulumi.Protect(true))
	}
	// volumeClaimTemplates are immutable, and the Kubernetes provider
	// replaces a StatefulSet whose templates change
	// (pulumi-kubernetes provider/pkg/provider/diff.go lists
	// .spec.volumeClaimTemplates among the StatefulSet's force-new fields).
	// A replacement would keep the old claim anyway (retention Retain), so
	// a later dbStorageGiB change is ignored instead of restarting the
	// database for nothing; the README says how to move to a bigger volume.
	statefulOpts = append(statefulOpts, pulumi.IgnoreChanges([]string{"spec.volumeClaimTemplates"}))
	if st.volume != nil {
		statefulOpts = append(statefulOpts, pulumi.DependsOn([]pulumi.Resource{st.volume}))
	}
	sts, err := appsv1.NewStatefulSet(ctx, name+"-postgres", &appsv1.StatefulSetArgs{
		Metadata: db.Meta(DatabaseService, Namespace),
		Spec: appsv1.StatefulSetSpecArgs{
			ServiceName: pulumi.String(DatabaseService),
			Replicas:    pulumi.Int(1),
			Selector:    &metav1.LabelSelectorArgs{MatchLabels: Database.Selector()},
			// Deleting or scaling the StatefulSet never deletes the claim;
			// only deleting the namespace (destroy) does, and then the
			// class's reclaim policy decides what happens to the data.
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs{
				WhenDeleted: pulumi.String("Retain"),
				WhenScaled:  pulumi.String("Retain"),
			},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: db.Labels()},
				Spec: corev1.PodSpecArgs{
					AutomountServiceAccountToken:  pulumi.Bool(false),
					SecurityContext:               kube.RestrictedPod(PostgresUID),
					TerminationGracePeriodSeconds: pulumi.Int(60),
					Containers: corev1.ContainerArray{
						corev1.ContainerArgs{
							Name:            pulumi.String("postgres"),
							Image:           pulumi.String(PostgresImage),
							ImagePullPolicy: pulumi.String("IfNotPresent"),
							Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
								Name: pulumi.String("postgres"), ContainerPort: pulumi.Int(PostgresPort), Protocol: pulumi.String("TCP"),
							}},
							Env:             pgEnv,
							StartupProbe:    pgIsReady(answering, pgStartupPeriod, 5, pgStartupFailures),
							LivenessProbe:   pgIsReady(answering, 10, 5, 6),
							ReadinessProbe:  pgIsReady(accepting, 5, 5, 3),
							Resources:       kube.Resources("100m", "256Mi", "1", "512Mi"),
							SecurityContext: kube.RestrictedContainer(),
							VolumeMounts: corev1.VolumeMountArray{
								mount("data", "/var/lib/postgresql/data", false),
								mount("run", pgSocket, false),
								mount("tmp", "/tmp", false),
							},
						},
						corev1.ContainerArgs{
							Name:            pulumi.String("roles"),
							Image:           pulumi.String(PostgresImage), // for psql; no second image to pull
							ImagePullPolicy: pulumi.String("IfNotPresent"),
							Command:         pulumi.ToStringArray([]string{"bash", "-c", dbroles.Script}),
							Env: corev1.EnvVarArray{
								plainEnv("APP_ROLE", DatabaseUser),
								plainEnv("APP_DATABASE", DatabaseName),
								plainEnv("SECRETS_DIR", secretsDir),
								plainEnv("PGHOST", pgSocket),
								plainEnv("PGUSER", DatabaseAdmin),
								plainEnv("STATE_DIR", "/tmp"),
							},
							// Ready once the roles match the Secret (so the
							// database's endpoint appears only when the service
							// can log in); alive while the loop turns.
							ReadinessProbe:  fileProbe("test -e /tmp/"+dbroles.AppliedFile, 5, 3),
							LivenessProbe:   fileProbe("test -n \"$(find /tmp/"+dbroles.HeartbeatFile+" -mmin -2)\"", 30, 3),
							Resources:       kube.Resources("10m", "16Mi", "100m", "64Mi"),
							SecurityContext: kube.RestrictedContainer(),
							VolumeMounts: corev1.VolumeMountArray{
								mount("run", pgSocket, false),
								mount("credentials", secretsDir, true),
								mount("roles-tmp", "/tmp", false),
							},
						},
					},
					Volumes: corev1.VolumeArray{
						emptyDir("run"), emptyDir("tmp"), emptyDir("roles-tmp"),
						corev1.VolumeArgs{Name: pulumi.String("credentials"), Secret: &corev1.SecretVolumeSourceArgs{
							SecretName:  secret.Metadata.Name(),
							Items:       items,
							DefaultMode: pulumi.Int(0o440), // group: the pod's fsGroup
						}},
					},
				},
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data"), Labels: db.Labels()},
				Spec: corev1.PersistentVolumeClaimSpecArgs{
					AccessModes:      pulumi.StringArray{pulumi.String("ReadWriteOnce")},
					StorageClassName: st.class,
					Resources: corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{
						"storage": pulumi.Sprintf("%dGi", args.DBStorageGiB),
					}},
				},
			}},
		},
	}, statefulOpts...)
	if err != nil {
		return nil, err
	}
	// One replica: a budget of minAvailable 1 would make every node drain
	// (a MicroK8s refresh, a reboot) hang on this pod. maxUnavailable 1
	// lets the drain evict it (PostgreSQL gets SIGTERM and 60s for a
	// clean shutdown) and still counts it as a disruption.
	if _, err := policyv1.NewPodDisruptionBudget(ctx, name+"-postgres", &policyv1.PodDisruptionBudgetArgs{
		Metadata: db.Meta(DatabaseService, Namespace),
		Spec: policyv1.PodDisruptionBudgetSpecArgs{
			MaxUnavailable: pulumi.Int(1),
			Selector:       &metav1.LabelSelectorArgs{MatchLabels: Database.Selector()},
		},
	}, opts...); err != nil {
		return nil, err
	}
	return sts, nil
}
