package observability

// Alert is one Prometheus alerting rule.
type Alert struct {
	Name, Expr, For, Severity, Summary string
}

// Alerts are the platform's alerting rules.
func Alerts() []Alert {
	return []Alert{
		{
			Name:     "CommentsHigh5xxRatio",
			Expr:     `sum(rate(comments_http_requests_total{namespace="comments",code=~"5.."}[5m])) / clamp_min(sum(rate(comments_http_requests_total{namespace="comments"}[5m])), 1e-9) > 0.05`,
			For:      "10m",
			Severity: "critical",
			Summary:  "More than 5% of comments API requests fail with 5xx",
		},
		{
			Name:     "CommentsHighP99Latency",
			Expr:     `histogram_quantile(0.99, sum by (le) (rate(comments_http_request_duration_seconds_bucket{namespace="comments"}[5m]))) > 0.5`,
			For:      "10m",
			Severity: "warning",
			Summary:  "Comments API p99 latency above 500 ms",
		},
		{
			Name:     "PlatformPodCrashLooping",
			Expr:     `increase(kube_pod_container_status_restarts_total{namespace=~"comments|kong"}[15m]) > 3`,
			For:      "5m",
			Severity: "warning",
			Summary:  "A platform pod restarted more than 3 times in 15 minutes",
		},
		{
			Name:     "CommentsDatabaseDown",
			Expr:     `sum(kube_statefulset_status_replicas_ready{namespace="comments",statefulset="postgres"}) < 1 or sum(rate(comments_store_errors_total{namespace="comments",operation="ping"}[5m])) > 0`,
			For:      "5m",
			Severity: "critical",
			Summary:  "PostgreSQL for the comments service is not ready or not answering",
		},
	}
}
