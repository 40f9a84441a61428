// Command bench measures the comments service over loopback beside two
// peers it runs itself in the same run, and reports the service's
// throughput as a ratio of theirs: one figure from one run on one machine,
// rather than an absolute number from a noisy one.
//
// The method (what issue 22 measured with):
//   - each server is its own process pinned to CPU 0 and the load generator,
//     wrk -t1 -c16, to CPU 1 (taskset), so the two never compete for a core
//     and the server's throughput is what one core gives it;
//   - the peers: bare, fixed answers with the body not read (what the
//     kernel and net/http cost, the ceiling); minimal, the same routes and
//     JSON shapes written the plainest correct way (net/http, encoding/json,
//     a map under a mutex, no middleware; peers.go); and ours, the service
//     binary as the Deployment runs it (LOG_LEVEL=info: the access log on,
//     its output read through a pipe as the container runtime does);
//   - rounds interleave the servers (bare, minimal, ours, bare, ...) per
//     scenario, so a change in the machine's load hits all of them alike;
//     each server's figure is its best round, and its spread is how far its
//     worst round fell below that.
//
// PostgreSQL is measured too, in absolute terms only. -profile writes CPU
// and allocation profiles of the service under the same load (the service
// served in-process, pinned the same way) and its GC trace. It is what
// `make bench` runs; it asserts nothing.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"microk8s-platform/service/internal/load"
	"microk8s-platform/service/internal/pgtest"
)

// peerEnv, when set, makes this binary serve a peer (bare, minimal, ours)
// on the address in addrEnv instead of benchmarking.
const (
	peerEnv = "COMMENTS_BENCH_PEER"
	addrEnv = "COMMENTS_BENCH_ADDR"
)

func main() {
	if peer := os.Getenv(peerEnv); peer != "" {
		if err := servePeer(peer, os.Getenv(addrEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "bench ("+peer+"):", err)
			os.Exit(1)
		}
		return
	}
	bin := flag.String("bin", "bin/comments", "service binary to benchmark")
	dur := flag.Duration("duration", 5*time.Second, "wrk's duration per server, scenario and round")
	conns := flag.Int("c", 16, "wrk's connections (one thread)")
	rounds := flag.Int("rounds", 2, "interleaved rounds; each server's best counts")
	pg := flag.Bool("postgres", true, "also measure the service on PostgreSQL")
	profile := flag.String("profile", "", "instead: write CPU and allocation profiles and the GC trace of the service under load to this directory")
	nStalled := flag.Int("stalled", 0, "instead: measure RSS with this many connections stalled mid-header")
	stalledSize := flag.Int("stalled-bytes", 1<<20, "header bytes each stalled connection sends")
	flag.Parse()
	var err error
	switch {
	case *nStalled > 0:
		err = stalled(*bin, *nStalled, *stalledSize)
	case *profile != "":
		err = profileOurs(*profile, *dur, *conns)
	default:
		err = run(*bin, *dur, *conns, max(1, *rounds), *pg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Seeded reads: readIDs ids with commentsPerID comments each, the same on
// every server that stores comments.
const readIDs, commentsPerID = 1000, 5

// wrk scripts: GET spreads over the seeded ids; POST writes comments of a
// realistic shape to 1000 other ids.
const (
	getScript = `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/comment/list/g" .. (n % 1000))
end
`
	postScript = `local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/api/comment/new", nil,
    string.format('{"email":"reader%d@example.com","comment":"comment number %d, a sentence of ordinary length","content_id":"p%d"}', n % 97, n, n % 1000))
end
`
)

// seed posts the comments GET reads.
func seed(base string) error {
	res := load.Run(context.Background(), 8, time.Hour, func(w, i int) (string, string, []byte) {
		n := w + i*8
		if n >= readIDs*commentsPerID {
			return "", "", nil
		}
		return "POST", base + "/api/comment/new",
			fmt.Appendf(nil, `{"email":"r%d@example.com","comment":"comment %d","content_id":"g%d"}`, n, n, n%readIDs)
	})
	if res.Errors != 0 || res.Requests != readIDs*commentsPerID {
		return fmt.Errorf("seeding %s: %d requests, %d errors", base, res.Requests, res.Errors)
	}
	return nil
}

// proc is one server process under load.
type proc struct {
	name string
	base string
	pid  int
	stop func()
}

// pinned returns the command that runs argv on CPU cpu, when this machine
// has two CPUs or more and taskset; otherwise argv as it is (and a note).
func pinned(cpu int, argv ...string) []string {
	if runtime.NumCPU() < 2 {
		return argv
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

// startServer runs argv pinned to CPU 0 on a free loopback port (given as
// PORT and addrEnv) and waits until it answers /readyz. Its stdout is read
// through a pipe and thrown away, as a container runtime reads a pod's.
func startServer(name string, env []string, argv ...string) (proc, error) {
	return startServerStderr(name, env, os.Stderr, argv...)
}

// startServerStderr is startServer with the server's stderr going to stderr.
func startServerStderr(name string, env []string, stderr io.Writer, argv ...string) (proc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return proc{}, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	argv = pinned(0, argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), append([]string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port),
		addrEnv + "=127.0.0.1:" + strconv.Itoa(port), "DRAIN_DELAY=0s"}, env...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return proc{}, err
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return proc{}, err
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for range 300 {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return proc{name, base, cmd.Process.Pid, stop}, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return proc{}, fmt.Errorf("%s did not become ready in 30s", name)
}

// wrkResult is one wrk run.
type wrkResult struct {
	rps      float64
	requests int
	non2xx   int
	errors   int
}

var (
	rpsRe    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reqsRe   = regexp.MustCompile(`(\d+) requests in`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	errRe    = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk pinned to CPU 1 against base with script.
func runWrk(base, script string, d time.Duration, conns int) (wrkResult, error) {
	argv := pinned(1, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(math.Ceil(d.Seconds())))+"s", "-s", script, base)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	r := wrkResult{}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m := reqsRe.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.Atoi(string(m[1]))
	}
	if m := non2xxRe.FindSubmatch(out); m != nil {
		r.non2xx, _ = strconv.Atoi(string(m[1]))
	}
	if m := errRe.FindSubmatch(out); m != nil {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(string(g))
			r.errors += n
		}
	}
	return r, nil
}

// cpuTime is the CPU time process pid has used, user and system, from
// /proc/<pid>/stat (utime and stime, fields 14 and 15, in clock ticks of
// 1/100 s: USER_HZ on Linux). Unlike req/s, CPU per request does not drop
// when the hypervisor gives the core to someone else for a while: on
// shared cores it is the steadier measure of what a request costs.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// figures are one server's rounds of one scenario.
type figures []float64

// least is the smallest figure (for costs, the best round).
func (f figures) least() float64 {
	l := math.Inf(1)
	for _, v := range f {
		l = min(l, v)
	}
	return l
}

func (f figures) best() float64 {
	b := 0.0
	for _, v := range f {
		b = max(b, v)
	}
	return b
}

// costSpread is how far the worst round's cost rose above the least, in
// percent of the least.
func (f figures) costSpread() float64 {
	l := f.least()
	if len(f) == 0 || l == 0 {
		return 0
	}
	w := 0.0
	for _, v := range f {
		w = max(w, v)
	}
	return 100 * (w - l) / l
}

// spread is how far the worst round fell below the best, in percent.
func (f figures) spread() float64 {
	if len(f) == 0 || f.best() == 0 {
		return 0
	}
	w := math.Inf(1)
	for _, v := range f {
		w = min(w, v)
	}
	return 100 * (f.best() - w) / f.best()
}

// prepare is what every run needs: wrk, this binary (it serves the peers)
// and the load scripts, removed by cleanup.
func prepare() (self, get, post string, cleanup func(), err error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return "", "", "", nil, errors.New("wrk is not installed: apt-get install wrk (make bench runs scripts/deps.sh bench)")
	}
	if self, err = os.Executable(); err != nil {
		return "", "", "", nil, err
	}
	get, post, cleanup, err = writeScripts()
	return self, get, post, cleanup, err
}

func writeScripts() (get, post string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "comments-bench-")
	if err != nil {
		return "", "", nil, err
	}
	get, post = filepath.Join(dir, "get.lua"), filepath.Join(dir, "post.lua")
	if err := os.WriteFile(get, []byte(getScript), 0o644); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(post, []byte(postScript), 0o644); err != nil {
		return "", "", nil, err
	}
	return get, post, func() { os.RemoveAll(dir) }, nil
}

func run(bin string, dur time.Duration, conns, rounds int, withPG bool) error {
	self, get, post, cleanup, err := prepare()
	if err != nil {
		return err
	}
	defer cleanup()
	pin := "server on CPU 0, wrk on CPU 1"
	if len(pinned(0)) == 0 {
		pin = "not pinned (one CPU, or no taskset): figures mean less"
	}
	fmt.Printf("comments service benchmark: wrk -t1 -c%d, %s per server, scenario and round, %d rounds interleaved, %s, loopback\n\n", conns, dur, rounds, pin)

	var servers []proc
	for _, p := range []struct {
		name string
		env  []string
		argv []string
	}{
		{"bare", []string{peerEnv + "=bare"}, []string{self}},
		{"minimal", []string{peerEnv + "=minimal"}, []string{self}},
		{"ours", []string{"LOG_LEVEL=info"}, []string{bin}},
	} {
		s, err := startServer(p.name, p.env, p.argv...)
		if err != nil {
			return err
		}
		defer s.stop()
		if p.name != "bare" {
			if err := seed(s.base); err != nil {
				return err
			}
		}
		servers = append(servers, s)
	}
	results := map[string]map[string]figures{}
	cpu := map[string]map[string]figures{} // µs of server CPU per request
	for _, sc := range []struct{ name, script string }{{"GET", get}, {"POST", post}} {
		results[sc.name] = map[string]figures{}
		cpu[sc.name] = map[string]figures{}
		for range rounds {
			for _, s := range servers {
				before, err := cpuTime(s.pid)
				if err != nil {
					return err
				}
				r, err := runWrk(s.base, sc.script, dur, conns)
				if err != nil {
					return err
				}
				after, err := cpuTime(s.pid)
				if err != nil {
					return err
				}
				if r.requests > 0 {
					cpu[sc.name][s.name] = append(cpu[sc.name][s.name], float64((after-before).Microseconds())/float64(r.requests))
				}
				if r.non2xx > 0 || r.errors > 0 {
					return fmt.Errorf("%s %s: %d non-2xx answers, %d socket errors: the load is not what it should be", sc.name, s.name, r.non2xx, r.errors)
				}
				results[sc.name][s.name] = append(results[sc.name][s.name], r.rps)
			}
		}
	}
	fmt.Printf("%-9s %26s %26s\n", "", "GET req/s (spread)", "POST req/s (spread)")
	for _, s := range servers {
		fmt.Printf("%-9s %18.0f (%4.1f %%) %18.0f (%4.1f %%)\n", s.name,
			results["GET"][s.name].best(), results["GET"][s.name].spread(), results["POST"][s.name].best(), results["POST"][s.name].spread())
	}
	for _, peer := range []string{"minimal", "bare"} {
		fmt.Printf("ours/%-7s %23.0f %% %24.0f %%\n", peer,
			100*results["GET"]["ours"].best()/results["GET"][peer].best(), 100*results["POST"]["ours"].best()/results["POST"][peer].best())
	}
	fmt.Printf("\n%-9s %26s %26s\n", "", "GET CPU µs/req (spread)", "POST CPU µs/req (spread)")
	for _, s := range servers {
		fmt.Printf("%-9s %18.1f (%4.1f %%) %18.1f (%4.1f %%)\n", s.name,
			cpu["GET"][s.name].least(), cpu["GET"][s.name].costSpread(), cpu["POST"][s.name].least(), cpu["POST"][s.name].costSpread())
	}
	for _, peer := range []string{"minimal", "bare"} {
		fmt.Printf("ours/%-7s %23.0f %% %24.0f %%\n", peer,
			100*cpu["GET"]["ours"].least()/cpu["GET"][peer].least(), 100*cpu["POST"]["ours"].least()/cpu["POST"][peer].least())
	}
	fmt.Println("(req/s: best round; CPU: the server's user+system time per request, least round; spread: worst round against that)")
	fmt.Println()

	if !withPG {
		return nil
	}
	pg, err := pgtest.Start()
	if err != nil {
		return err
	}
	defer pg.Stop()
	s, err := startServer("ours/postgres", []string{"LOG_LEVEL=info", "DATABASE_URL=" + pg.URL("postgres")}, bin)
	if err != nil {
		return err
	}
	defer s.stop()
	if err := seed(s.base); err != nil {
		return err
	}
	for _, sc := range []struct{ name, script string }{{"GET", get}, {"POST", post}} {
		r, err := runWrk(s.base, sc.script, dur, conns)
		if err != nil {
			return err
		}
		fmt.Printf("%-4s ours on PostgreSQL %8.0f req/s (%d non-2xx)\n", sc.name, r.rps, r.non2xx)
	}
	return nil
}

// gcLines counts a GC trace's collections.
func gcLines(trace []byte) int {
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(trace))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "gc ") {
			n++
		}
	}
	return n
}
