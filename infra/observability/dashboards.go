package observability

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Panel is one graph: a title, a unit and its queries (expr -> legend).
type Panel struct {
	Title   string
	Unit    string
	Stat    bool // a single big number instead of a time series
	Queries []Query
}

// Query is one PromQL expression and its legend.
type Query struct{ Expr, Legend string }

// Dashboard is one dashboard's content.
type Dashboard struct {
	UID, Title string
	Panels     []Panel
}

// Dashboards are the platform's dashboards. Each query names only metrics
// the service, Kong, node-exporter or kube-state-metrics export (checked by
// the tests against those lists).
func Dashboards() []Dashboard {
	svc := `namespace="comments"`
	return []Dashboard{
		{
			UID: "comments-service", Title: "Comments service",
			Panels: []Panel{
				{Title: "Requests per second by route", Unit: "reqps", Queries: []Query{
					{fmt.Sprintf(`sum by (route) (rate(comments_http_requests_total{%s}[$__rate_interval]))`, svc), "{{route}}"},
				}},
				{Title: "Error ratio (5xx)", Unit: "percentunit", Queries: []Query{
					{fmt.Sprintf(`sum(rate(comments_http_requests_total{%s,code=~"5.."}[$__rate_interval])) / clamp_min(sum(rate(comments_http_requests_total{%s}[$__rate_interval])), 1e-9)`, svc, svc), "5xx ratio"},
				}},
				{Title: "Latency p50 / p95 / p99 by route", Unit: "s", Queries: []Query{
					{fmt.Sprintf(`histogram_quantile(0.50, sum by (le, route) (rate(comments_http_request_duration_seconds_bucket{%s}[$__rate_interval])))`, svc), "p50 {{route}}"},
					{fmt.Sprintf(`histogram_quantile(0.95, sum by (le, route) (rate(comments_http_request_duration_seconds_bucket{%s}[$__rate_interval])))`, svc), "p95 {{route}}"},
					{fmt.Sprintf(`histogram_quantile(0.99, sum by (le, route) (rate(comments_http_request_duration_seconds_bucket{%s}[$__rate_interval])))`, svc), "p99 {{route}}"},
				}},
				{Title: "Requests in flight", Unit: "short", Queries: []Query{
					{fmt.Sprintf(`sum(comments_http_requests_in_flight{%s})`, svc), "in flight"},
				}},
				{Title: "Store errors per second", Unit: "short", Queries: []Query{
					{fmt.Sprintf(`sum by (operation) (rate(comments_store_errors_total{%s}[$__rate_interval]))`, svc), "{{operation}}"},
				}},
				{Title: "Comments created (24h)", Unit: "short", Stat: true, Queries: []Query{
					{fmt.Sprintf(`sum(increase(comments_created_total{%s}[24h]))`, svc), "created"},
				}},
			},
		},
		{
			UID: "kong-gateway", Title: "Kong gateway",
			Panels: []Panel{
				{Title: "Requests per second by status", Unit: "reqps", Queries: []Query{
					{`sum by (code) (rate(kong_http_requests_total[$__rate_interval]))`, "{{code}}"},
				}},
				{Title: "Request latency p95 / p99 (ms)", Unit: "ms", Queries: []Query{
					{`histogram_quantile(0.95, sum by (le) (rate(kong_request_latency_ms_bucket[$__rate_interval])))`, "p95 total"},
					{`histogram_quantile(0.99, sum by (le) (rate(kong_request_latency_ms_bucket[$__rate_interval])))`, "p99 total"},
					{`histogram_quantile(0.99, sum by (le) (rate(kong_upstream_latency_ms_bucket[$__rate_interval])))`, "p99 upstream"},
					{`histogram_quantile(0.99, sum by (le) (rate(kong_kong_latency_ms_bucket[$__rate_interval])))`, "p99 kong"},
				}},
				{Title: "Bandwidth", Unit: "Bps", Queries: []Query{
					{`sum by (direction) (rate(kong_bandwidth_bytes[$__rate_interval]))`, "{{direction}}"},
				}},
				{Title: "Connections", Unit: "short", Queries: []Query{
					{`sum by (state) (kong_nginx_connections_total{state=~"active|reading|writing|waiting"})`, "{{state}}"},
				}},
			},
		},
		{
			UID: "platform-node", Title: "Platform: node and workloads",
			Panels: []Panel{
				{Title: "Node CPU busy", Unit: "percentunit", Queries: []Query{
					{`1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))`, "busy"},
				}},
				{Title: "Node memory used", Unit: "percentunit", Queries: []Query{
					{`1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes)`, "used"},
				}},
				{Title: "Pod restarts (1h)", Unit: "short", Queries: []Query{
					{`sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total{namespace=~"comments|kong"}[1h]))`, "{{namespace}}/{{pod}}"},
				}},
				{Title: "PostgreSQL up", Unit: "short", Stat: true, Queries: []Query{
					{`sum(kube_statefulset_status_replicas_ready{namespace="comments",statefulset="postgres"})`, "ready replicas"},
				}},
			},
		},
	}
}

// GrafanaSchemaVersion is the newest dashboard schema the addon's Grafana
// (12.1.1, from kube-prometheus-stack 77.6.2's grafana chart 9.4.5,
// grafana/helm-charts grafana-9.4.5 Chart.yaml appVersion) migrates to:
// LATEST_VERSION = 41 in grafana/grafana
// apps/dashboard/pkg/migration/schemaversion/migrations.go of the 12.1
// line; 42 arrived after it. Its migrator fails a dashboard whose
// schemaVersion it cannot reach ("schema version not migrated to target
// version", apps/dashboard/pkg/migration/migrate.go).
const GrafanaSchemaVersion = 41

// Build renders d as Grafana dashboard JSON with the foundation SDK.
func (d Dashboard) Build() ([]byte, error) {
	ds := common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	// The classic (v1) dashboard JSON, not dashboardv2: the Grafana that the
	// MicroK8s observability addon ships loads v1 files from its sidecar.
	//lint:ignore SA1019 v2 dashboards do not load in the addon's Grafana
	b := dashboard.NewDashboardBuilder(d.Title).
		Uid(d.UID).
		Tags([]string{"microk8s-platform"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Readonly().
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus"))
	for _, p := range d.Panels {
		var targets []cog.Builder[variants.Dataquery]
		for i, q := range p.Queries {
			targets = append(targets, prometheus.NewDataqueryBuilder().Expr(q.Expr).LegendFormat(q.Legend).RefId(string(rune('A'+i))))
		}
		if p.Stat {
			sp := stat.NewPanelBuilder().Title(p.Title).Unit(p.Unit).Datasource(ds).Height(6).Span(6)
			for _, t := range targets {
				sp = sp.WithTarget(t)
			}
			b = b.WithPanel(sp)
			continue
		}
		tp := timeseries.NewPanelBuilder().Title(p.Title).Unit(p.Unit).Datasource(ds).Height(8).Span(12).Min(0)
		for _, t := range targets {
			tp = tp.WithTarget(t)
		}
		b = b.WithPanel(tp)
	}
	built, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
	}
	// The SDK writes its own newest schema version (42 in v0.0.22), newer
	// than the addon's Grafana knows; Grafana migrates older versions up,
	// never newer ones down.
	built.SchemaVersion = GrafanaSchemaVersion
	return json.MarshalIndent(built, "", "  ")
}
