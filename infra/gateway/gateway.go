// Package gateway runs Kong as the platform's API gateway: the Kong proxy in
// DB-less mode with the Kong Ingress Controller (KIC) beside it in one pod,
// as typed Kubernetes objects (no Helm, so a preview shows every object):
// the CRDs it needs, least-privilege RBAC, the Deployment, a LoadBalancer
// proxy Service (MetalLB hands it the VM's address), a status Service for
// metrics, the IngressClass "kong" and a global prometheus plugin. The
// namespace enforces Pod Security "restricted", and its NetworkPolicies
// (netpol.go) let in the proxy ports from anywhere and the status port from
// Prometheus, and let out only the backends, the Kubernetes API and DNS.
//
// KIC starts only if every controller it runs can sync its cache: KIC 3.4
// runs all its controllers unless told otherwise and does not skip a Kong
// kind whose CRD is missing or whose objects it may not list and watch
// cluster-wide — the controller times out and the pod crash-loops. So each
// controller of the pinned KIC (Controllers, taken from its v3.4.4 source)
// is either served — its CRD embedded byte for byte from the module KIC
// v3.4.4 pins (CRDSource) and exactly the grants its RBAC markers declare —
// or switched off by name (CONTROLLER_ENABLE_CONTROLLER_*=false, feature
// gates set explicitly). We serve only what the platform uses (Ingress,
// IngressClass, Service/EndpointSlice, Secret and ConfigMap, which always
// run, KongPlugin, KongClusterPlugin): fewer CRDs to keep at KIC's version
// and less for the ServiceAccount to read. The Gateway API controllers are
// off too: they start whenever the cluster has the Gateway API CRDs, which
// MicroK8s installs only with its gateway addon, and we would rather not
// have a later addon start controllers this ServiceAccount cannot serve.
//
// The Deployment waits for the CRDs, the ClusterRole and its binding; the
// proxy Service keeps client source addresses (externalTrafficPolicy
// Local), so rate limiting by IP limits clients, not the node.
package gateway

import (
	"sort"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/kube"
)

// Pinned images.
const (
	KongImage       = "kong:3.9.1"
	ControllerImage = "kong/kubernetes-ingress-controller:3.4.4"
)

// Names other packages refer to.
const (
	Namespace     = "kong"
	IngressClass  = "kong"
	ProxyService  = "kong-proxy"
	StatusService = "kong-status"
	StatusPort    = 8100 // Kong's status listener: /status, /status/ready, /metrics
	ProxyPort     = 8000
	ProxyTLSPort  = 8443
	// PrometheusPlugin is the KongClusterPlugin applied to every route.
	PrometheusPlugin = "prometheus"
	controllerName   = "ingress-controllers.konghq.com/kong"
	// MetricsLabel marks the Service Prometheus scrapes.
	MetricsLabel = "microk8s-platform/metrics"
	kongUID      = 1000 // the kong image's user
)

// Component labels Kong's objects.
var Component = kube.Component{Name: "kong", Component: "gateway"}

// Args configure the gateway.
type Args struct {
	// ServiceType of the proxy Service: LoadBalancer (MicroK8s with MetalLB)
	// or NodePort (clusters without a load-balancer implementation).
	ServiceType string
	// Policy is what Kong's NetworkPolicies let through (netpol.go).
	Policy Policy
}

// Gateway is Kong and its configuration objects.
type Gateway struct {
	pulumi.ResourceState
	comp kube.Component

	Namespace    *corev1.Namespace
	Deployment   *appsv1.Deployment
	ProxyService *corev1.Service
	// CRDs must exist before any Kong custom resource is declared.
	CRDs []pulumi.Resource
	// IngressClassName is the class Ingresses use to be served by Kong.
	IngressClassName pulumi.StringOutput
}

// New declares Kong.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Gateway, error) {
	g := &Gateway{comp: Component}
	if err := ctx.RegisterComponentResource("microk8s-platform:gateway:Kong", name, g, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(g)
	c := g.comp
	var err error

	// Kong's pod meets Pod Security "restricted"; the API server refuses any pod here that does not.
	g.Namespace, err = corev1.NewNamespace(ctx, name, &corev1.NamespaceArgs{Metadata: kube.RestrictedNamespace(c.Meta(Namespace, ""))}, p)
	if err != nil {
		return nil, err
	}
	inNS := pulumi.DependsOn([]pulumi.Resource{g.Namespace})
	g.CRDs, err = g.crds(ctx, name, p)
	if err != nil {
		return nil, err
	}

	sa, err := corev1.NewServiceAccount(ctx, name, &corev1.ServiceAccountArgs{Metadata: c.Meta("kong", Namespace)}, p, inNS)
	if err != nil {
		return nil, err
	}
	grants, err := g.rbac(ctx, name, sa.Metadata.Name().Elem(), p, inNS)
	if err != nil {
		return nil, err
	}

	ic, err := networkingv1.NewIngressClass(ctx, name, &networkingv1.IngressClassArgs{
		Metadata: c.Meta(IngressClass, ""),
		Spec:     networkingv1.IngressClassSpecArgs{Controller: pulumi.String(controllerName)},
	}, p)
	if err != nil {
		return nil, err
	}
	g.IngressClassName = ic.Metadata.Name().Elem()

	g.Deployment, err = appsv1.NewDeployment(ctx, name, &appsv1.DeploymentArgs{
		Metadata: c.Meta("kong", Namespace),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: c.Selector()},
			Template: corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: c.Labels()},
				Spec: corev1.PodSpecArgs{
					ServiceAccountName:           sa.Metadata.Name().Elem(),
					AutomountServiceAccountToken: pulumi.Bool(true), // the controller talks to the API
					SecurityContext:              kube.RestrictedPod(kongUID),
					Containers:                   corev1.ContainerArray{proxyContainer(), controllerContainer()},
					Volumes: corev1.VolumeArray{
						corev1.VolumeArgs{Name: pulumi.String("kong-prefix"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("256Mi")}},
						corev1.VolumeArgs{Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{SizeLimit: pulumi.String("64Mi")}},
					},
				},
			},
		},
	}, p, pulumi.DependsOn(append(append([]pulumi.Resource{g.Namespace, ic, sa}, grants...), g.CRDs...)))
	if err != nil {
		return nil, err
	}

	serviceType := args.ServiceType
	if serviceType == "" {
		serviceType = "LoadBalancer"
	}
	g.ProxyService, err = corev1.NewService(ctx, name+"-proxy", &corev1.ServiceArgs{
		Metadata: c.Meta(ProxyService, Namespace),
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String(serviceType),
			Selector: c.Selector(),
			// Kong sees the client's address, not the node's (SNAT'd)
			// one. Traffic only reaches nodes running Kong: one VM here.
			ExternalTrafficPolicy: pulumi.String("Local"),
			Ports: corev1.ServicePortArray{
				corev1.ServicePortArgs{Name: pulumi.String("http"), Port: pulumi.Int(80), TargetPort: pulumi.String("proxy"), Protocol: pulumi.String("TCP")},
				corev1.ServicePortArgs{Name: pulumi.String("https"), Port: pulumi.Int(443), TargetPort: pulumi.String("proxy-tls"), Protocol: pulumi.String("TCP")},
			},
		},
	}, p, inNS)
	if err != nil {
		return nil, err
	}
	if _, err := corev1.NewService(ctx, name+"-status", &corev1.ServiceArgs{
		// The label is what the ServiceMonitor selects: the proxy Service has
		// the same app labels but no status port.
		Metadata: kube.WithLabels(c.Meta(StatusService, Namespace), map[string]string{MetricsLabel: "kong"}),
		Spec: corev1.ServiceSpecArgs{
			Type:     pulumi.String("ClusterIP"),
			Selector: c.Selector(),
			Ports: corev1.ServicePortArray{corev1.ServicePortArgs{
				Name: pulumi.String("status"), Port: pulumi.Int(StatusPort), TargetPort: pulumi.String("status"), Protocol: pulumi.String("TCP"),
			}},
		},
	}, p, inNS); err != nil {
		return nil, err
	}

	if err := networkPolicies(ctx, name, args.Policy, p, inNS); err != nil {
		return nil, err
	}

	// Metrics for every route, with the detailed series on.
	if _, err := kube.Custom(ctx, name+"-prometheus", "configuration.konghq.com/v1", "KongClusterPlugin",
		kube.WithLabels(&metav1.ObjectMetaArgs{
			Name:        pulumi.String(PrometheusPlugin),
			Labels:      c.Labels(),
			Annotations: pulumi.StringMap{"kubernetes.io/ingress.class": pulumi.String(IngressClass)},
		}, map[string]string{"global": "true"}),
		map[string]any{
			"plugin": "prometheus",
			"config": map[string]any{
				"status_code_metrics":     true,
				"latency_metrics":         true,
				"bandwidth_metrics":       true,
				"upstream_health_metrics": true,
				"per_consumer":            false,
			},
		}, p, pulumi.DependsOn(g.CRDs)); err != nil {
		return nil, err
	}

	return g, ctx.RegisterResourceOutputs(g, pulumi.Map{"proxyService": g.ProxyService.Metadata.Name()})
}

func proxyContainer() corev1.ContainerArgs {
	env := map[string]string{
		"KONG_DATABASE":               "off",
		"KONG_PREFIX":                 "/kong_prefix/",
		"KONG_PROXY_LISTEN":           "0.0.0.0:8000, 0.0.0.0:8443 http2 ssl",
		"KONG_ADMIN_LISTEN":           "127.0.0.1:8444 http2 ssl", // the controller, in this pod, only
		"KONG_STATUS_LISTEN":          "0.0.0.0:8100",
		"KONG_PORT_MAPS":              "80:8000, 443:8443",
		"KONG_NGINX_WORKER_PROCESSES": "2",
		"KONG_KIC":                    "on",
		"KONG_ROUTER_FLAVOR":          "traditional_compatible",
		"KONG_PROXY_ACCESS_LOG":       "/dev/stdout",
		"KONG_ADMIN_ACCESS_LOG":       "/dev/stdout",
		"KONG_PROXY_ERROR_LOG":        "/dev/stderr",
		"KONG_ADMIN_ERROR_LOG":        "/dev/stderr",
		"KONG_ANONYMOUS_REPORTS":      "off",
	}
	return corev1.ContainerArgs{
		Name:            pulumi.String("proxy"),
		Image:           pulumi.String(KongImage),
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Env:             envVars(env),
		Ports: corev1.ContainerPortArray{
			corev1.ContainerPortArgs{Name: pulumi.String("proxy"), ContainerPort: pulumi.Int(ProxyPort), Protocol: pulumi.String("TCP")},
			corev1.ContainerPortArgs{Name: pulumi.String("proxy-tls"), ContainerPort: pulumi.Int(ProxyTLSPort), Protocol: pulumi.String("TCP")},
			corev1.ContainerPortArgs{Name: pulumi.String("status"), ContainerPort: pulumi.Int(StatusPort), Protocol: pulumi.String("TCP")},
		},
		ReadinessProbe:  kube.HTTPProbe("/status/ready", "status", 10, 3),
		LivenessProbe:   kube.HTTPProbe("/status", "status", 10, 3),
		Resources:       kube.Resources("100m", "256Mi", "1", "512Mi"),
		SecurityContext: kube.RestrictedContainer(),
		VolumeMounts: corev1.VolumeMountArray{
			corev1.VolumeMountArgs{Name: pulumi.String("kong-prefix"), MountPath: pulumi.String("/kong_prefix/")},
			corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")},
		},
		Lifecycle: &corev1.LifecycleArgs{PreStop: &corev1.LifecycleHandlerArgs{Exec: &corev1.ExecActionArgs{
			Command: pulumi.ToStringArray([]string{"kong", "quit", "--wait=15"}),
		}}},
	}
}

func controllerContainer() corev1.ContainerArgs {
	settings := map[string]string{
		"CONTROLLER_KONG_ADMIN_URL": "https://127.0.0.1:8444",
		// The admin API listens on the pod's loopback with Kong's
		// self-signed certificate; nothing outside the pod reaches it.
		"CONTROLLER_KONG_ADMIN_TLS_SKIP_VERIFY": "true",
		"CONTROLLER_PUBLISH_SERVICE":            Namespace + "/" + ProxyService,
		"CONTROLLER_INGRESS_CLASS":              IngressClass,
		// Off: no data to Kong, and no reads of nodes and pods for it.
		"CONTROLLER_ANONYMOUS_REPORTS": "false",
	}
	// The controllers we do not serve, switched off by name.
	for k, v := range Env() {
		settings[k] = v
	}
	env := envVars(settings)
	for _, f := range []struct{ name, path string }{{"POD_NAME", "metadata.name"}, {"POD_NAMESPACE", "metadata.namespace"}} {
		env = append(env, corev1.EnvVarArgs{Name: pulumi.String(f.name), ValueFrom: &corev1.EnvVarSourceArgs{
			FieldRef: &corev1.ObjectFieldSelectorArgs{FieldPath: pulumi.String(f.path)},
		}})
	}
	return corev1.ContainerArgs{
		Name:            pulumi.String("ingress-controller"),
		Image:           pulumi.String(ControllerImage),
		ImagePullPolicy: pulumi.String("IfNotPresent"),
		Env:             env,
		Ports: corev1.ContainerPortArray{
			corev1.ContainerPortArgs{Name: pulumi.String("cmetrics"), ContainerPort: pulumi.Int(10255), Protocol: pulumi.String("TCP")},
			corev1.ContainerPortArgs{Name: pulumi.String("health"), ContainerPort: pulumi.Int(10254), Protocol: pulumi.String("TCP")},
		},
		ReadinessProbe:  kube.HTTPProbe("/readyz", "health", 10, 3),
		LivenessProbe:   kube.HTTPProbe("/healthz", "health", 10, 3),
		Resources:       kube.Resources("50m", "128Mi", "500m", "256Mi"),
		SecurityContext: kube.RestrictedContainer(),
	}
}

// envVars turns a map into a sorted env list (sorted, so previews are stable).
func envVars(m map[string]string) corev1.EnvVarArray {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out corev1.EnvVarArray
	for _, k := range keys {
		out = append(out, corev1.EnvVarArgs{Name: pulumi.String(k), Value: pulumi.String(m[k])})
	}
	return out
}
