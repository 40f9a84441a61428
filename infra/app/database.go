package app

import (
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/kube"
)

// database: PostgreSQL as a one-replica StatefulSet behind a headless Service.
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
	ready := &corev1.ProbeArgs{
		Exec: &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{
			"pg_isready", "-h", "127.0.0.1", "-U", DatabaseUser, "-d", DatabaseName,
		})},
		PeriodSeconds:    pulumi.Int(10),
		TimeoutSeconds:   pulumi.Int(5),
		FailureThreshold: pulumi.Int(6),
	}
	emptyDir := func(n string) corev1.VolumeArgs {
		return corev1.VolumeArgs{Name: pulumi.String(n), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{}}
	}
	return appsv1.NewStatefulSet(ctx, name+"-postgres", &appsv1.StatefulSetArgs{
		Metadata: db.Meta(DatabaseService, Namespace),
		Spec: appsv1.StatefulSetSpecArgs{
			ServiceName: pulumi.String(DatabaseService),
			Replicas:    pulumi.Int(1),
			Selector:    &metav1.LabelSelectorArgs{MatchLabels: Database.Selector()},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: db.Labels()},
				Spec: corev1.PodSpecArgs{
					AutomountServiceAccountToken:  pulumi.Bool(false),
					SecurityContext:               kube.RestrictedPod(postgresUID),
					TerminationGracePeriodSeconds: pulumi.Int(60),
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String("postgres"),
						Image:           pulumi.String(PostgresImage),
						ImagePullPolicy: pulumi.String("IfNotPresent"),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("postgres"), ContainerPort: pulumi.Int(PostgresPort), Protocol: pulumi.String("TCP"),
						}},
						EnvFrom: corev1.EnvFromSourceArray{corev1.EnvFromSourceArgs{
							SecretRef: &corev1.SecretEnvSourceArgs{Name: secret.Metadata.Name()},
						}},
						Env: corev1.EnvVarArray{corev1.EnvVarArgs{
							Name: pulumi.String("PGDATA"), Value: pulumi.String("/var/lib/postgresql/data/pgdata"),
						}},
						ReadinessProbe:  ready,
						LivenessProbe:   ready,
						Resources:       kube.Resources("100m", "256Mi", "1", "512Mi"),
						SecurityContext: kube.RestrictedContainer(),
						VolumeMounts: corev1.VolumeMountArray{
							corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String("/var/lib/postgresql/data")},
							corev1.VolumeMountArgs{Name: pulumi.String("run"), MountPath: pulumi.String("/var/run/postgresql")},
							corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")},
						},
					}},
					Volumes: corev1.VolumeArray{emptyDir("run"), emptyDir("tmp")},
				},
			},
			// The cluster's default storage class (hostpath-storage on MicroK8s).
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{corev1.PersistentVolumeClaimTypeArgs{
				Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("data"), Labels: db.Labels()},
				Spec: corev1.PersistentVolumeClaimSpecArgs{
					AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
					Resources: corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{
						"storage": pulumi.Sprintf("%dGi", args.DBStorageGiB),
					}},
				},
			}},
		},
	}, opts...)
}
