package observability

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"microk8s-platform/infra/gateway"
	"microk8s-platform/service/metrics"
)

func TestMetricNamesScanner(t *testing.T) {
	cases := map[string][]string{
		`sum by (route) (rate(comments_http_requests_total{namespace="comments",code=~"5.."}[$__rate_interval]))`: {"comments_http_requests_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 0.5`:                                        {"x_bucket"},
		`1 - sum(a_bytes) / sum(b_bytes)`:                         {"a_bytes", "b_bytes"},
		`sum(up{job="a"}) < 1 or sum(rate(errs_total[5m])) > 0`:   {"errs_total", "up"},
		`clamp_min(sum(rate(y_total[5m])), 1e-9)`:                 {"y_total"},
		`increase(kube_pod_container_status_restarts_total[15m])`: {"kube_pod_container_status_restarts_total"},
	}
	for expr, want := range cases {
		if got := MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%q) = %v, want %v", expr, got, want)
		}
	}
}

// Every metric a dashboard or alert queries is one the service, Kong or
// the addon's exporters really export. The service's list comes from its
// own registry, so renaming a metric there fails here.
func TestQueriedMetricsExist(t *testing.T) {
	known := knownMetrics()
	used := map[string]bool{}
	for _, expr := range Expressions() {
		names := MetricNames(expr)
		if len(names) == 0 {
			t.Errorf("no metric found in %q", expr)
		}
		for _, n := range names {
			used[n] = true
		}
		for _, n := range unknownMetrics(expr, known) {
			t.Errorf("%q queries %s, which nothing exports", expr, n)
		}
	}
	// The dashboards cover what the issue asks for.
	for _, n := range []string{metrics.RequestsTotal, metrics.RequestDuration + "_bucket", metrics.InFlight,
		"kong_http_requests_total", "kong_request_latency_ms_bucket", "kong_bandwidth_bytes",
		"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "kube_pod_container_status_restarts_total", "kube_statefulset_status_replicas_ready"} {
		if !used[n] {
			t.Errorf("no dashboard or alert uses %s", n)
		}
	}
}

// knownMetrics are the series something really exports, and who: the
// service (from its own registry, so renaming a metric there fails here),
// Kong, and the addon's exporters.
func knownMetrics() map[string]string {
	known := map[string]string{}
	for _, n := range metrics.SeriesNames() {
		known[n] = "comments service"
	}
	for _, n := range gateway.KongMetrics {
		known[n] = "Kong"
	}
	for _, n := range PlatformMetrics {
		known[n] = "node-exporter/kube-state-metrics"
	}
	return known
}

// unknownMetrics are the metrics expr queries that nothing exports.
func unknownMetrics(expr string, known map[string]string) []string {
	var out []string
	for _, n := range MetricNames(expr) {
		if _, ok := known[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// The check above must be able to fail: a made-up metric is caught.
func TestUnknownMetricIsDetected(t *testing.T) {
	typo := `sum(rate(comments_http_request_total{code=~"5.."}[5m])) / sum(rate(kong_http_requests_total[5m]))` // singular: a typo
	if got := unknownMetrics(typo, knownMetrics()); !slices.Equal(got, []string{"comments_http_request_total"}) {
		t.Fatalf("unknown metrics in %q: %v, want the typo alone", typo, got)
	}
	if slices.Contains(metrics.SeriesNames(), "comments_http_request_total") {
		t.Fatal("typo accepted as a service metric")
	}
}

func TestDashboardsBuildToGrafanaJSON(t *testing.T) {
	uids := map[string]bool{}
	for _, d := range Dashboards() {
		body, err := d.Build()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			UID    string `json:"uid"`
			Title  string `json:"title"`
			Panels []struct {
				Type    string `json:"type"`
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"panels"`
			Templating struct {
				List []struct {
					Name, Type string
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: not JSON: %v", d.UID, err)
		}
		if doc.UID != d.UID || doc.Title != d.Title || uids[doc.UID] {
			t.Errorf("uid/title %q/%q (duplicate: %v)", doc.UID, doc.Title, uids[doc.UID])
		}
		uids[doc.UID] = true
		if len(doc.Panels) != len(d.Panels) {
			t.Fatalf("%s: %d panels, want %d", d.UID, len(doc.Panels), len(d.Panels))
		}
		for i, p := range doc.Panels {
			if p.Title != d.Panels[i].Title || len(p.Targets) != len(d.Panels[i].Queries) || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s panel %d: %+v", d.UID, i, p)
			}
			if p.Type != "timeseries" && p.Type != "stat" {
				t.Errorf("%s panel %q has type %q", d.UID, p.Title, p.Type)
			}
		}
		if len(doc.Templating.List) != 1 || doc.Templating.List[0].Type != "datasource" {
			t.Errorf("%s: datasource variable missing: %+v", d.UID, doc.Templating.List)
		}
	}
}

func TestAlertsAreComplete(t *testing.T) {
	names := map[string]bool{}
	for _, a := range Alerts() {
		if a.Name == "" || a.Expr == "" || a.Summary == "" || (a.Severity != "warning" && a.Severity != "critical") || !strings.HasSuffix(a.For, "m") {
			t.Errorf("incomplete alert %+v", a)
		}
		names[a.Name] = true
	}
	for _, want := range []string{"CommentsHigh5xxRatio", "CommentsHighP99Latency", "PlatformPodCrashLooping", "CommentsDatabaseDown"} {
		if !names[want] {
			t.Errorf("alert %s missing", want)
		}
	}
}
