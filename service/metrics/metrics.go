// Package metrics defines the service's Prometheus metrics. The names are
// exported constants because the platform's dashboards and alert rules are
// checked against them (infra/observability tests): renaming a metric here
// breaks those tests instead of silently emptying a panel.
package metrics

import (
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names. Histograms are also exported as _bucket, _sum and _count.
const (
	RequestsTotal   = "comments_http_requests_total"
	RequestDuration = "comments_http_request_duration_seconds"
	InFlight        = "comments_http_requests_in_flight"
	StoreErrors     = "comments_store_errors_total"
	CommentsCreated = "comments_created_total"
)

// Metrics holds the collectors and the registry they are exposed from.
type Metrics struct {
	Registry *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	inFlight    prometheus.Gauge
	storeErrors *prometheus.CounterVec
	created     prometheus.Counter

	mu       sync.RWMutex
	children map[requestKey]requestChildren
}

// New registers the service's collectors plus the Go runtime and process
// collectors on a fresh registry (never the global one, so tests can build
// as many as they like).
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		children: map[requestKey]requestChildren{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: RequestsTotal,
			Help: "HTTP requests handled, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    RequestDuration,
			Help:    "HTTP request latency in seconds, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: InFlight,
			Help: "HTTP requests being served now.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: StoreErrors,
			Help: "Store operations that failed, by operation (add, list, ping).",
		}, []string{"operation"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: CommentsCreated,
			Help: "Comments created.",
		}),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.inFlight, m.storeErrors, m.created,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Zero series for the store operations, so rate() has a baseline.
	for _, op := range []string{"add", "list", "ping"} {
		m.storeErrors.WithLabelValues(op)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveRequest records one finished request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	c := m.child(requestKey{route, method, code})
	c.requests.Inc()
	c.duration.Observe(d.Seconds())
}

// requestKey is one label set of the request metrics. The routes and
// methods are bounded (api's routeLabel, methodLabel), and so are codes.
type requestKey struct {
	route, method string
	code          int
}

type requestChildren struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// child finds the label set's series once and keeps them: WithLabelValues
// hashes the labels and formats the code on every call, a visible cost
// per request in the profile.
func (m *Metrics) child(k requestKey) requestChildren {
	m.mu.RLock()
	c, ok := m.children[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = requestChildren{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.code)),
		duration: m.duration.WithLabelValues(k.route),
	}
	m.mu.Lock()
	m.children[k] = c
	m.mu.Unlock()
	return c
}

// InFlightInc and InFlightDec track requests being served.
func (m *Metrics) InFlightInc() { m.inFlight.Inc() }
func (m *Metrics) InFlightDec() { m.inFlight.Dec() }

// StoreError counts a failed store operation.
func (m *Metrics) StoreError(op string) { m.storeErrors.WithLabelValues(op).Inc() }

// CommentCreated counts a stored comment.
func (m *Metrics) CommentCreated() { m.created.Inc() }

// SeriesNames lists every metric name this service can expose, with the
// _bucket/_sum/_count series of histograms and the Go runtime and process
// metrics, sorted. Dashboards may only query names in this list.
func SeriesNames() []string {
	m := New()
	// One observation so every vector has a child and shows up in Gather.
	m.ObserveRequest("/", "GET", 200, time.Millisecond)
	families, err := m.Registry.Gather()
	if err != nil {
		panic(err) // registering fixed collectors cannot fail at run time
	}
	var names []string
	for _, f := range families {
		name := f.GetName()
		switch f.GetType().String() {
		case "HISTOGRAM":
			names = append(names, name+"_bucket", name+"_sum", name+"_count")
		case "SUMMARY":
			names = append(names, name, name+"_sum", name+"_count")
		default:
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}
