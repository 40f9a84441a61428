// Package app runs the comments service on the cluster: its namespace, a
// PostgreSQL StatefulSet with a volume, a Secret, a roles sidecar that
// keeps the service's least-privilege role and the passwords in line with
// that Secret, and a disruption budget a drain can pass (database.go), the service's
// Deployment (restricted security context, probes, rolling updates that
// never drop below the desired replicas), its Service, an Ingress served by
// Kong with a rate-limiting plugin, a PodDisruptionBudget when there is
// more than one replica, and NetworkPolicies (netpol.go) that deny
// everything else: only Kong and Prometheus reach the service, only the
// service reaches the database, the service reaches only the database and
// DNS, the database reaches nothing. The namespace enforces Pod Security
// "restricted" (kube.RestrictedNamespace).
package app

import (
	"fmt"
	"net/url"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	policyv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/policy/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/gateway"
	"microk8s-platform/infra/image"
	"microk8s-platform/infra/kube"
)

// Names other packages and the tests refer to.
const (
	Namespace         = "comments"
	ServiceName       = "comments"
	DatabaseService   = "postgres"
	DatabaseName      = "comments"
	DatabaseUser      = "comments"
	SecretName        = "comments-db"
	RateLimitPlugin   = "comments-rate-limit"
	HTTPPort          = image.Port // the image listens there
	PostgresPort      = 5432
	serviceUID        = image.UID  // the image's user
	PostgresUID       = 999        // the postgres image's user
	DataDir           = "postgres" // PostgreSQL's directory on the data disk (cluster.DataMount)
	PrometheusNS      = "observability"
	IngressPathPrefix = "/api/comment"
)

// API and Database label the two workloads.
var (
	API      = kube.Component{Name: "comments", Component: "api"}
	Database = kube.Component{Name: "comments", Component: "database"}
)

// Args configure the application.
type Args struct {
	// Image is the service's image reference: repository@sha256:... for the
	// image built from service/ (infra/image), repository:tag for appImage.
	Image string
	// Version labels the objects (app.kubernetes.io/version): the tag, or
	// the digest's first 12 hex digits.
	Version string
	// PullPolicy is Never for an image side-loaded onto the node, else
	// IfNotPresent.
	PullPolicy string
	// PullSecret is a .dockerconfigjson (secret) for a private registry;
	// nil when the registry is public or nothing is pulled.
	PullSecret *pulumi.StringOutput
	// ImageReady is what must finish before pods can start: the import of a
	// side-loaded image.
	ImageReady         []pulumi.Resource
	Replicas           int
	RateLimitPerMinute int
	DBPassword         pulumi.StringOutput // secret: the service's role
	// DBAdminPassword is the superuser's password (secret); nil leaves it
	// random and unknown, for administration through the pod's socket.
	DBAdminPassword *pulumi.StringOutput
	DBStorageGiB    int
	// DBReclaimPolicy is Delete (the cluster's default class: destroy
	// deletes the data) or Retain (a class whose volumes outlive destroy,
	// and the database resources protected).
	DBReclaimPolicy string
	// DataDir, when set, is the host directory on the VM's data disk for
	// PostgreSQL's static volume (dataDiskStorage); else the cluster's
	// classes.
	DataDir string
	// AwaitIngress waits for Kong to publish an address on the Ingress;
	// off where the proxy Service gets no load-balancer address.
	AwaitIngress bool
	// Gateway supplies the Kong CRDs the rate-limit plugin needs.
	Gateway *gateway.Gateway
}

// App is the service and its database.
type App struct {
	pulumi.ResourceState
	Namespace  *corev1.Namespace
	Deployment *appsv1.Deployment
	Service    *corev1.Service
	Database   *appsv1.StatefulSet
	Ingress    *networkingv1.Ingress
}

// New declares the application.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*App, error) {
	a := &App{}
	if err := ctx.RegisterComponentResource("microk8s-platform:app:Comments", name, a, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(a)
	api := API
	api.Version = args.Version
	var err error

	// Both workloads meet Pod Security "restricted"; the API server refuses any pod here that does not.
	a.Namespace, err = corev1.NewNamespace(ctx, name, &corev1.NamespaceArgs{Metadata: kube.RestrictedNamespace(API.Meta(Namespace, ""))}, p)
	if err != nil {
		return nil, err
	}
	inNS := pulumi.DependsOn([]pulumi.Resource{a.Namespace})

	// The passwords and the URL built from them stay secrets end to end.
	// The service's role is not the superuser: service/dbroles, run by a
	// sidecar of the database, gives it its own schema and nothing else,
	// and applies password changes, which the image itself never does.
	dbURL := args.DBPassword.ApplyT(func(pw string) string {
		u := url.URL{
			Scheme:   "postgres",
			User:     url.UserPassword(DatabaseUser, pw),
			Host:     fmt.Sprintf("%s.%s.svc:%d", DatabaseService, Namespace, PostgresPort),
			Path:     "/" + DatabaseName,
			RawQuery: "sslmode=disable",
		}
		return u.String()
	}).(pulumi.StringOutput)
	secretData := pulumi.StringMap{
		KeyAppPassword: pulumi.ToSecret(args.DBPassword).(pulumi.StringOutput),
		KeyDatabaseURL: pulumi.ToSecret(dbURL).(pulumi.StringOutput),
	}
	if args.DBAdminPassword != nil {
		secretData[KeyAdminPassword] = pulumi.ToSecret(*args.DBAdminPassword).(pulumi.StringOutput)
	}
	secret, err := corev1.NewSecret(ctx, name+"-db", &corev1.SecretArgs{
		Metadata:   Database.Meta(SecretName, Namespace),
		Type:       pulumi.String("Opaque"),
		StringData: secretData,
	}, p, inNS)
	if err != nil {
		return nil, err
	}
	// The service's pods roll when their credentials change; the database's
	// do not need to: the roles sidecar reads the Secret's files, which the
	// kubelet refreshes in place, and applies the change.
	apiCredentials := credentialsDigest(ctx.Project()+"/"+ctx.Stack(), dbURL)

	if a.Database, err = database(ctx, name, args, secret, p, inNS); err != nil {
		return nil, err
	}
	if a.Deployment, err = deployment(ctx, name, args, api, secret, apiCredentials, p, pulumi.DependsOn(append([]pulumi.Resource{a.Namespace, a.Database}, args.ImageReady...))); err != nil {
		return nil, err
	}
	a.Service, err = corev1.NewService(ctx, name, &corev1.ServiceArgs{
		Metadata: api.Meta(ServiceName, Namespace),
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: API.Selector(),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("http"), Port: pulumi.Int(80), TargetPort: pulumi.String("http"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p, inNS)
	if err != nil {
		return nil, err
	}

	if _, err := kube.Custom(ctx, name+"-rate-limit", "configuration.konghq.com/v1", "KongPlugin",
		api.Meta(RateLimitPlugin, Namespace),
		map[string]any{
			"plugin": "rate-limiting",
			"config": map[string]any{"minute": args.RateLimitPerMinute, "policy": "local", "limit_by": "ip"},
		}, p, pulumi.DependsOn(append([]pulumi.Resource{a.Namespace}, args.Gateway.CRDs...))); err != nil {
		return nil, err
	}

	annotations := pulumi.StringMap{
		"konghq.com/plugins":    pulumi.String(RateLimitPlugin),
		"konghq.com/strip-path": pulumi.String("false"),
	}
	if !args.AwaitIngress {
		annotations["pulumi.com/skipAwait"] = pulumi.String("true")
	}
	ingMeta := api.Meta(ServiceName, Namespace)
	ingMeta.Annotations = annotations
	a.Ingress, err = networkingv1.NewIngress(ctx, name, &networkingv1.IngressArgs{
		Metadata: ingMeta,
		Spec: networkingv1.IngressSpecArgs{
			IngressClassName: args.Gateway.IngressClassName,
			Rules: networkingv1.IngressRuleArray{networkingv1.IngressRuleArgs{
				Http: networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{networkingv1.HTTPIngressPathArgs{
					Path:     pulumi.String(IngressPathPrefix),
					PathType: pulumi.String("Prefix"),
					Backend: networkingv1.IngressBackendArgs{Service: networkingv1.IngressServiceBackendArgs{
						Name: a.Service.Metadata.Name().Elem(),
						Port: networkingv1.ServiceBackendPortArgs{Name: pulumi.String("http")},
					}},
				}}},
			}},
		},
	}, p, inNS)
	if err != nil {
		return nil, err
	}

	if args.Replicas > 1 {
		if _, err := policyv1.NewPodDisruptionBudget(ctx, name, &policyv1.PodDisruptionBudgetArgs{
			Metadata: api.Meta(ServiceName, Namespace),
			Spec: policyv1.PodDisruptionBudgetSpecArgs{
				MinAvailable: pulumi.Int(args.Replicas - 1),
				Selector:     &metav1.LabelSelectorArgs{MatchLabels: API.Selector()},
			},
		}, p, inNS); err != nil {
			return nil, err
		}
	}
	if err := networkPolicies(ctx, name, p, inNS); err != nil {
		return nil, err
	}
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{"service": a.Service.Metadata.Name()})
}

func deployment(ctx *pulumi.Context, name string, args Args, api kube.Component, secret *corev1.Secret, credentials pulumi.StringOutput, opts ...pulumi.ResourceOption) (*appsv1.Deployment, error) {
	pullSecrets, err := imagePullSecrets(ctx, name, args, opts...)
	if err != nil {
		return nil, err
	}
	return appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
		Metadata: api.Meta(ServiceName, Namespace),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(args.Replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: API.Selector()},
			Strategy: appsv1.DeploymentStrategyArgs{
				Type: pulumi.String("RollingUpdate"),
				RollingUpdate: appsv1.RollingUpdateDeploymentArgs{
					MaxUnavailable: pulumi.Int(0),
					MaxSurge:       pulumi.Int(1),
				},
			},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{
					Labels:      api.Labels(),
					Annotations: pulumi.StringMap{CredentialsAnnotation: credentials},
				},
				Spec: corev1.PodSpecArgs{
					AutomountServiceAccountToken:  pulumi.Bool(false),
					ImagePullSecrets:              pullSecrets,
					SecurityContext:               kube.RestrictedPod(serviceUID),
					TerminationGracePeriodSeconds: pulumi.Int(30), // > DRAIN_DELAY + SHUTDOWN_TIMEOUT
					Containers: corev1.ContainerArray{corev1.ContainerArgs{
						Name:            pulumi.String("comments"),
						Image:           pulumi.String(args.Image),
						ImagePullPolicy: pulumi.String(args.PullPolicy),
						Ports: corev1.ContainerPortArray{corev1.ContainerPortArgs{
							Name: pulumi.String("http"), ContainerPort: pulumi.Int(HTTPPort), Protocol: pulumi.String("TCP"),
						}},
						Env: corev1.EnvVarArray{
							corev1.EnvVarArgs{Name: pulumi.String("PORT"), Value: pulumi.String(fmt.Sprint(HTTPPort))},
							corev1.EnvVarArgs{Name: pulumi.String("LOG_LEVEL"), Value: pulumi.String("info")},
							corev1.EnvVarArgs{Name: pulumi.String("DRAIN_DELAY"), Value: pulumi.String("5s")},
							corev1.EnvVarArgs{Name: pulumi.String("SHUTDOWN_TIMEOUT"), Value: pulumi.String("15s")},
							// Its only key of the Secret. Start-up (the probe on /readyz) ends when the database answers.
							corev1.EnvVarArgs{Name: pulumi.String("DATABASE_URL"), ValueFrom: &corev1.EnvVarSourceArgs{
								SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: secret.Metadata.Name(), Key: pulumi.String(KeyDatabaseURL)},
							}},
							corev1.EnvVarArgs{Name: pulumi.String("DATABASE_WAIT"), Value: pulumi.String(fmt.Sprintf("%ds", ServiceDatabaseWaitSeconds))},
						},
						LivenessProbe:   kube.HTTPProbe("/healthz", "http", 10, 3),
						ReadinessProbe:  kube.HTTPProbe("/readyz", "http", 5, 2),
						StartupProbe:    kube.HTTPProbe("/readyz", "http", serviceStartupPeriod, serviceStartupFailures),
						Resources:       kube.Resources("50m", "64Mi", "500m", "128Mi"),
						SecurityContext: kube.RestrictedContainer(),
					}},
				},
			},
		},
	}, opts...)
}
