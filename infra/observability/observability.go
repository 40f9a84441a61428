// Package observability plugs the platform into MicroK8s' observability
// addon (kube-prometheus-stack in namespace "observability"):
// ServiceMonitors for the comments service and Kong, PrometheusRule alerts,
// Grafana dashboards built in Go with the Grafana foundation SDK and
// shipped as ConfigMaps that Grafana's dashboard sidecar picks up, and the
// Alertmanager configuration.
//
// Where alerts go: the addon's own Alertmanager configuration ends in a
// 'null' receiver (kube-prometheus-stack 77.6.2 values.yaml), so alerts
// fired and reached nobody. On a MicroK8s of ours the chart is installed
// with alertmanagerSpec.useExistingSecret and configSecret naming a Secret
// this package writes from stack config (alertEmails via an SMTP relay,
// alertWebhookUrl; the password and the URL stay Pulumi secrets), routing
// every alert except Watchdog and InfoInhibitor to that receiver.
// Prometheus keeps its data on a hostpath volume on the VM's disk
// (scripts/microk8s/enable-addons.sh), so a restart keeps the history; a
// replaced VM starts empty.
//
// The dashboards declare schemaVersion GrafanaSchemaVersion: the addon of
// MicroK8s 1.35 installs kube-prometheus-stack 77.6.2, whose grafana
// dependency is chart 9.4.5, Grafana 12.1.1.
package observability

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/app"
	"microk8s-platform/infra/gateway"
	"microk8s-platform/infra/kube"
)

// Discovery labels of kube-prometheus-stack as MicroK8s installs it.
const (
	Namespace      = "observability"
	ReleaseLabel   = "release"
	ReleaseValue   = "kube-prom-stack"
	DashboardLabel = "grafana_dashboard"
)

// Component labels the observability objects.
var Component = kube.Component{Name: "observability", Component: "monitoring"}

// Target is what a ServiceMonitor scrapes.
type Target struct {
	Name, Namespace, Port, Path string
	Selector                    map[string]string
}

// Targets are the scraped Services: the comments service and Kong's status
// listener.
func Targets() []Target {
	return []Target{
		{Name: "comments", Namespace: app.Namespace, Port: "http", Path: "/metrics", Selector: plain(app.API.Selector())},
		{Name: "kong", Namespace: gateway.Namespace, Port: "status", Path: "/metrics", Selector: map[string]string{gateway.MetricsLabel: "kong"}},
	}
}

// Args configure observability.
type Args struct {
	DependsOn []pulumi.Resource // the namespaces and Services monitored
	// Alerts, when set, is written as the Alertmanager configuration the
	// addon reads (Secret AlertmanagerSecret in namespace observability):
	// on a MicroK8s of ours every alert goes to this receiver.
	Alerts *Receiver
	// AlertmanagerSecret names that Secret (cluster.AlertmanagerSecret).
	AlertmanagerSecret string
}

// Observability is the monitoring objects.
type Observability struct {
	pulumi.ResourceState
}

// New declares ServiceMonitors, alert rules and dashboards.
func New(ctx *pulumi.Context, name string, args Args, opts ...pulumi.ResourceOption) (*Observability, error) {
	o := &Observability{}
	if err := ctx.RegisterComponentResource("microk8s-platform:observability:Monitoring", name, o, opts...); err != nil {
		return nil, err
	}
	p := pulumi.Parent(o)
	deps := pulumi.DependsOn(args.DependsOn)
	release := map[string]string{ReleaseLabel: ReleaseValue}

	for _, t := range Targets() {
		if _, err := kube.Custom(ctx, name+"-"+t.Name, "monitoring.coreos.com/v1", "ServiceMonitor",
			kube.WithLabels(Component.Meta(t.Name, t.Namespace), release),
			map[string]any{"spec": map[string]any{
				"selector":          map[string]any{"matchLabels": t.Selector},
				"namespaceSelector": map[string]any{"matchNames": []string{t.Namespace}},
				"endpoints":         []any{map[string]any{"port": t.Port, "path": t.Path, "interval": "30s"}},
			}}, p, deps); err != nil {
			return nil, err
		}
	}

	var rules []any
	for _, a := range Alerts() {
		rules = append(rules, map[string]any{
			"alert":       a.Name,
			"expr":        a.Expr,
			"for":         a.For,
			"labels":      map[string]any{"severity": a.Severity},
			"annotations": map[string]any{"summary": a.Summary},
		})
	}
	if _, err := kube.Custom(ctx, name+"-alerts", "monitoring.coreos.com/v1", "PrometheusRule",
		kube.WithLabels(Component.Meta("microk8s-platform", app.Namespace), release),
		map[string]any{"spec": map[string]any{"groups": []any{map[string]any{"name": "microk8s-platform", "rules": rules}}}},
		p, deps); err != nil {
		return nil, err
	}

	if args.Alerts != nil {
		if _, err := alertmanagerSecret(ctx, name+"-alertmanager", args.AlertmanagerSecret, *args.Alerts, p); err != nil {
			return nil, err
		}
	}

	for _, d := range Dashboards() {
		body, err := d.Build()
		if err != nil {
			return nil, err
		}
		if _, err := corev1.NewConfigMap(ctx, name+"-dashboard-"+d.UID, &corev1.ConfigMapArgs{
			Metadata: kube.WithLabels(&metav1.ObjectMetaArgs{
				Name:      pulumi.String("dashboard-" + d.UID),
				Namespace: pulumi.String(Namespace),
				Labels:    Component.Labels(),
			}, map[string]string{DashboardLabel: "1"}),
			Data: pulumi.StringMap{d.UID + ".json": pulumi.String(string(body))},
		}, p); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
		}
	}
	return o, ctx.RegisterResourceOutputs(o, pulumi.Map{})
}

func plain(m pulumi.StringMap) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v.(pulumi.String))
	}
	return out
}
