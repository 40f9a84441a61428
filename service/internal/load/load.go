// Package load is a small closed-loop HTTP load generator for the
// benchmark: a fixed number of workers send requests back to back for a
// fixed time, and every latency is kept for exact percentiles.
package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Request builds the i-th request of worker w; an empty method means that
// worker has nothing more to send.
type Request func(w, i int) (method, url string, body []byte)

// Result summarises one run.
type Result struct {
	Requests  int
	Errors    int // transport errors and non-2xx answers other than Expect
	Duration  time.Duration
	latencies []time.Duration
}

// Merge combines two runs of the same scenario (rounds of one benchmark)
// into one result: requests, errors and durations add up, and the latencies
// are pooled for the percentiles.
func (r Result) Merge(o Result) Result {
	m := Result{Requests: r.Requests + o.Requests, Errors: r.Errors + o.Errors, Duration: r.Duration + o.Duration}
	m.latencies = slices.Concat(r.latencies, o.latencies)
	slices.Sort(m.latencies)
	return m
}

// RPS is completed requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// Percentile returns the p-th percentile latency (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	return r.latencies[max(0, min(i, len(r.latencies)-1))]
}

func (r Result) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %7.2f ms  p99 %7.2f ms  %d requests, %d errors",
		r.RPS(), ms(r.Percentile(50)), ms(r.Percentile(99)), r.Requests, r.Errors)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Run drives req with workers concurrent workers for d. Answers with a status
// in ok count as successes; anything else is an error.
func Run(ctx context.Context, workers int, d time.Duration, req Request, ok ...int) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	defer client.CloseIdleConnections()
	if len(ok) == 0 {
		ok = []int{200}
	}
	var mu sync.Mutex
	res := Result{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			for i := 0; ctx.Err() == nil; i++ {
				method, url, body := req(w, i)
				if method == "" {
					break
				}
				hr, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
				if body != nil {
					hr.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if !slices.Contains(ok, resp.StatusCode) {
					errs++
				}
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.Errors += errs
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.Requests = len(res.latencies)
	slices.Sort(res.latencies)
	return res
}
