// Command bench measures the comments service over loopback against a bare
// net/http handler it runs itself in the same run, and prints the service's
// throughput as a ratio of the bare handler's: one figure from one run on
// one machine, rather than an absolute number from a noisy one.
//
// The bare handler (bare.go) is this same binary re-executed as a separate
// process, so it and the service get the same treatment from the scheduler;
// it serves the same routes with the same JSON but nothing else: no
// validation, metrics, request ids, logging or store abstraction. The
// scenarios alternate in rounds (bare, service, bare, service, ...) so that
// drift in the machine's load hits both sides alike. PostgreSQL is measured
// too, in absolute terms only. It is what `make bench` runs; it asserts
// nothing.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"microk8s-platform/service/internal/load"
	"microk8s-platform/service/internal/pgtest"
)

// bareEnv, when set in the environment, makes this binary serve the bare
// handler on the address it names instead of benchmarking.
const bareEnv = "COMMENTS_BENCH_BARE_ADDR"

func main() {
	if addr := os.Getenv(bareEnv); addr != "" {
		if err := serveBare(addr); err != nil {
			fmt.Fprintln(os.Stderr, "bench (bare):", err)
			os.Exit(1)
		}
		return
	}
	bin := flag.String("bin", "bin/comments", "service binary to benchmark")
	dur := flag.Duration("duration", 10*time.Second, "load duration per scenario and side, split over the rounds")
	workers := flag.Int("c", 32, "concurrent clients")
	rounds := flag.Int("rounds", 3, "alternating bare/service rounds per scenario")
	pg := flag.Bool("postgres", true, "also measure the service on PostgreSQL")
	nStalled := flag.Int("stalled", 0, "instead: measure RSS with this many connections stalled mid-header")
	stalledSize := flag.Int("stalled-bytes", 1<<20, "header bytes each stalled connection sends")
	flag.Parse()
	if *nStalled > 0 {
		if err := stalled(*bin, *nStalled, *stalledSize); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*bin, *dur, *workers, max(1, *rounds), *pg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scenario is one kind of request, built for the i-th request of worker w.
type scenario struct {
	name string
	req  func(base string) load.Request
	ok   []int
}

var scenarios = []scenario{
	{"POST", func(base string) load.Request {
		return func(w, i int) (string, string, []byte) {
			return "POST", base + "/api/comment/new",
				fmt.Appendf(nil, `{"email":"w%d@example.com","comment":"comment %d","content_id":%d}`, w, i, i%1000)
		}
	}, []int{200}},
	// Reads hit ids that seed filled with the same comments on both sides
	// (the POSTs above land elsewhere, and unevenly).
	{"GET", func(base string) load.Request {
		return func(w, i int) (string, string, []byte) {
			return "GET", base + "/api/comment/list/g" + strconv.Itoa((w*7919+i)%readIDs), nil
		}
	}, []int{200}},
}

// readIDs ids, each with commentsPerID comments, are what GET reads.
const readIDs, commentsPerID = 1000, 5

// seed posts the comments the GET scenario reads.
func seed(base string, workers int) error {
	res := load.Run(context.Background(), workers, time.Hour, func(w, i int) (string, string, []byte) {
		n := w + i*workers
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

func run(bin string, dur time.Duration, workers, rounds int, withPG bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("comments service benchmark: %d clients, %s per scenario and side in %d rounds, loopback\n\n", workers, dur, rounds)

	bare, stopBare, barePID, err := startPID(self, addrEnvVar(bareEnv+"=127.0.0.1:%d"))
	if err != nil {
		return err
	}
	defer stopBare()
	svc, stopSvc, svcPID, err := startPID(bin)
	if err != nil {
		return err
	}
	defer stopSvc()
	for _, base := range []string{bare, svc} {
		if err := seed(base, workers); err != nil {
			return err
		}
	}
	slice := dur / time.Duration(rounds)
	for _, sc := range scenarios {
		var b, s load.Result
		var bCPU, sCPU time.Duration
		for range rounds {
			b = b.Merge(measure(barePID, &bCPU, func() load.Result {
				return load.Run(context.Background(), workers, slice, sc.req(bare), sc.ok...)
			}))
			s = s.Merge(measure(svcPID, &sCPU, func() load.Result {
				return load.Run(context.Background(), workers, slice, sc.req(svc), sc.ok...)
			}))
		}
		fmt.Printf("%-4s bare            %s  %6.1f µs CPU/request\n", sc.name, b, perRequest(bCPU, b))
		fmt.Printf("%-4s service/memory  %s  %6.1f µs CPU/request\n", sc.name, s, perRequest(sCPU, s))
		fmt.Printf("%-4s ratio service/bare %.0f %% (throughput), %.0f %% (server CPU per request, bare/service)\n\n",
			sc.name, 100*s.RPS()/b.RPS(), 100*perRequest(bCPU, b)/perRequest(sCPU, s))
	}

	if !withPG {
		return nil
	}
	pg, err := pgtest.Start()
	if err != nil {
		return err
	}
	defer pg.Stop()
	base, stop, err := start(bin, "", "DATABASE_URL="+pg.URL("postgres"))
	if err != nil {
		return err
	}
	defer stop()
	if err := seed(base, workers); err != nil {
		return err
	}
	for _, sc := range scenarios {
		fmt.Printf("%-4s service/postgres %s\n", sc.name, load.Run(context.Background(), workers, dur, sc.req(base), sc.ok...))
	}
	return nil
}

// measure runs f and adds the CPU time process pid spent meanwhile to cpu.
// Throughput on a shared machine moves with everything else running on it;
// the server's own CPU time per request much less so.
func measure(pid int, cpu *time.Duration, f func() load.Result) load.Result {
	before, _ := cpuTime(pid)
	r := f()
	after, _ := cpuTime(pid)
	*cpu += after - before
	return r
}

func perRequest(cpu time.Duration, r load.Result) float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(r.Requests)
}

// cpuTime is the user plus system time of pid (Linux /proc, in clock ticks
// of 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// start runs bin on a free loopback port and waits until it answers.
// addrEnv, if not empty, is a format for one more environment variable that
// receives the port.
func start(bin, addrEnv string, env ...string) (string, func(), error) {
	base, stop, _, err := startPID(bin, append([]string{addrEnvVar(addrEnv)}, env...)...)
	return base, stop, err
}

// addrEnvVar is a placeholder resolved by startPID once the port is known.
func addrEnvVar(format string) string { return "\x00addr=" + format }

// startPID is start that also returns the process id.
func startPID(bin string, env ...string) (string, func(), int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port), "LOG_LEVEL=error", "DRAIN_DELAY=0s")
	for _, e := range env {
		if format, ok := strings.CutPrefix(e, "\x00addr="); ok {
			if format != "" {
				cmd.Env = append(cmd.Env, fmt.Sprintf(format, port))
			}
			continue
		}
		cmd.Env = append(cmd.Env, e)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, 0, err
	}
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for range 300 {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base, stop, cmd.Process.Pid, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, 0, fmt.Errorf("%s did not become ready in 30s", bin)
}
