package observability

import (
	"regexp"
	"sort"
	"strings"
)

// PlatformMetrics are the node-exporter and kube-state-metrics series the
// dashboards and alerts use; both come with the observability addon.
var PlatformMetrics = []string{
	"node_cpu_seconds_total",
	"node_memory_MemAvailable_bytes",
	"node_memory_MemTotal_bytes",
	"kube_pod_container_status_restarts_total",
	"kube_statefulset_status_replicas_ready",
}

var (
	promqlStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping  = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlOperators = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// MetricNames returns the metric names a PromQL expression selects: every
// identifier that is not a function call, keyword, label or Grafana macro.
// It is a small scanner for the expressions this package writes, not a full
// PromQL parser.
func MetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, " ")
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	s = strings.ReplaceAll(s, "$__rate_interval", " ")
	seen := map[string]bool{}
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.' || s[loc[0]-1] == '$') {
			continue // part of a number such as 1e-9, or a variable
		}
		rest := strings.TrimLeft(s[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || promqlOperators[strings.ToLower(name)] {
			continue // a function or an operator keyword
		}
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Expressions are every PromQL expression of the dashboards and alerts.
func Expressions() []string {
	var out []string
	for _, d := range Dashboards() {
		for _, p := range d.Panels {
			for _, q := range p.Queries {
				out = append(out, q.Expr)
			}
		}
	}
	for _, a := range Alerts() {
		out = append(out, a.Expr)
	}
	return out
}
