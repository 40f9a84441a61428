package gateway

// KongMetrics are the series Kong 3.x's prometheus plugin exports on the
// status listener (kong/plugins/prometheus/exporter.lua; histograms as
// _bucket/_sum/_count). Dashboards and alerts may only query these for Kong.
var KongMetrics = []string{
	"kong_http_requests_total",        // service, route, code, source, consumer
	"kong_bandwidth_bytes",            // service, route, direction, consumer
	"kong_kong_latency_ms_bucket",     // service, route
	"kong_kong_latency_ms_sum",        //
	"kong_kong_latency_ms_count",      //
	"kong_request_latency_ms_bucket",  // service, route
	"kong_request_latency_ms_sum",     //
	"kong_request_latency_ms_count",   //
	"kong_upstream_latency_ms_bucket", // service, route
	"kong_upstream_latency_ms_sum",    //
	"kong_upstream_latency_ms_count",  //
	"kong_nginx_connections_total",    // node_id, subsystem, state
	"kong_nginx_requests_total",       // node_id, subsystem
	"kong_nginx_timers",               // state
	"kong_datastore_reachable",        //
	"kong_node_info",                  // node_id, version
	"kong_upstream_target_health",     // upstream, target, address, state
	"kong_memory_workers_lua_vms_bytes",
	"kong_memory_lua_shared_dict_bytes",
	"kong_memory_lua_shared_dict_total_bytes",
}
