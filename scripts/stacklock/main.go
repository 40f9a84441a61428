// Command stacklock serialises deploys of a Pulumi stack with a lock item in
// DynamoDB, because the self-managed S3 backend's own lock is a file with
// no lease: a killed CI job leaves it behind, and two writers can race.
//
//	stacklock run    --table T --key microk8s-platform/dev -- pulumi up --stack dev
//	stacklock status --table T --key microk8s-platform/dev
//	stacklock unlock --table T --key microk8s-platform/dev --force
//
// run takes the lock with a conditional put, renews its lease while the
// command runs, forwards SIGINT/SIGTERM to the command, releases the lock
// when it ends, records a history item, and exits with the command's code.
// A live lock held by someone else fails fast (exit 75) naming the holder.
//
// No command outlives its lock: it runs in a process group led by a reaper
// that kills the group when stacklock ends or dies (reap_unix.go), and a
// holder that cannot renew stops its command before its lease ends. So an
// expired lease is taken over only when the previous run is certainly over
// (its processes gone, on the same machine; its holder fenced, elsewhere);
// then, since the dead run also left Pulumi's own lock file in the bucket,
// `pulumi cancel --yes` for the stack clears that before the command runs.
// When it cannot tell, nothing is taken or cleared, and the message says
// what was found and how to resolve it (exit 75).
//
// AWS access uses the SDK's default configuration: AWS_REGION,
// AWS_PROFILE, AWS_ENDPOINT_URL (emulators), OIDC web identity in CI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/term"
)

// Exit codes of stacklock itself (a command's own code is passed through).
const (
	exitUsage  = 2
	exitHeld   = 75 // EX_TEMPFAIL: try again later
	exitFailed = 70
)

const usage = `usage:
  stacklock run    --table T --key PROJECT/STACK [--lease 2m] [--pulumi-stack S] [--pulumi pulumi] -- COMMAND [ARGS...]
  stacklock status --table T --key PROJECT/STACK [--history 10]
  stacklock unlock --table T --key PROJECT/STACK --force

--table defaults to $LOCK_TABLE. AWS region, credentials and endpoint come
from the standard AWS environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == reapArg {
		return reap()
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("stacklock "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	table := fs.String("table", os.Getenv("LOCK_TABLE"), "DynamoDB lock table")
	key := fs.String("key", "", "lock key, PROJECT/STACK")
	lease := fs.Duration("lease", 2*time.Minute, "lease; renewed every quarter of it while the command runs")
	pulumiStack := fs.String("pulumi-stack", "", "stack whose Pulumi lock file a takeover clears (default: the key after its last /)")
	pulumiBin := fs.String("pulumi", "pulumi", "the pulumi command a takeover runs `cancel` with")
	historyN := fs.Int("history", 10, "history items status shows")
	force := fs.Bool("force", false, "unlock: confirm breaking someone else's lock")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *table == "" || *key == "" {
		fmt.Fprintf(stderr, "stacklock %s: --table (or LOCK_TABLE) and --key are required\n\n%s", args[0], usage)
		return exitUsage
	}
	if *lease < time.Second {
		fmt.Fprintf(stderr, "stacklock: --lease %s is too short (want at least 1s)\n", *lease)
		return exitUsage
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "stacklock: AWS configuration: %v\n", err)
		return exitFailed
	}
	l := &Lock{DB: dynamodb.NewFromConfig(cfg), Table: *table, Key: *key, Lease: *lease}

	switch args[0] {
	case "run":
		cmd := fs.Args()
		if len(cmd) == 0 {
			fmt.Fprintf(stderr, "stacklock run: no command after --\n\n%s", usage)
			return exitUsage
		}
		stack := *pulumiStack
		if stack == "" {
			stack = (*key)[strings.LastIndex(*key, "/")+1:]
		}
		l.Stack = stack
		return runLocked(ctx, l, cmd, stack, *pulumiBin, stderr)
	case "status":
		return status(ctx, l, *historyN, stdout, stderr)
	case "unlock":
		return unlock(ctx, l, *force, stdout, stderr)
	}
	fmt.Fprintf(stderr, "stacklock: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func whoAmI(cmd []string) Holder {
	h := Holder{PID: os.Getpid(), Command: strings.Join(cmd, " ")}
	h.Host, _ = os.Hostname()
	h.Owner = os.Getenv("GITHUB_ACTOR")
	if h.Owner == "" {
		if u, err := user.Current(); err == nil {
			h.Owner = u.Username
		}
	}
	if id := os.Getenv("GITHUB_RUN_ID"); id != "" {
		h.RunURL = fmt.Sprintf("%s/%s/actions/runs/%s", os.Getenv("GITHUB_SERVER_URL"), os.Getenv("GITHUB_REPOSITORY"), id)
		if a := os.Getenv("GITHUB_RUN_ATTEMPT"); a != "" && a != "1" {
			h.RunURL += "/attempts/" + a
		}
	}
	h.Commit = os.Getenv("GITHUB_SHA")
	if h.Commit == "" {
		if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
			h.Commit = strings.TrimSpace(string(out))
		}
	}
	return h
}

// previousRunIsOver is the liveness check before a takeover (Lock.Dead).
// On the holder's own machine it looks at the processes; elsewhere it can
// rely only on the holder having promised to fence itself (Holder.Fenced).
func previousRunIsOver(l *Lock) func(Holder) (bool, string) {
	return func(prev Holder) (bool, string) {
		if prev.Machine != "" && prev.Machine == machineID() {
			alive, found := localLiveness(prev.PID, prev.PGID)
			return !alive, found
		}
		if prev.Fenced {
			return true, fmt.Sprintf("it ran on %s, whose stacklock stops its command before the lease ends when it cannot renew and takes the command along if it dies; the lease ended more than %s ago", prev.Host, l.takeoverGrace(prev))
		}
		return false, fmt.Sprintf("it ran on %s (pid %d) with a stacklock that does not stop its command when the lease ends, and whether that command still runs cannot be told from here", prev.Host, prev.PID)
	}
}

func runLocked(ctx context.Context, l *Lock, cmd []string, stack, pulumiBin string, stderr io.Writer) int {
	// The process group first: its id goes into the lock item, so a later
	// takeover on this machine can check that nothing of this run is left.
	g, err := startGroup()
	if err != nil {
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	h := whoAmI(cmd)
	h.Machine, h.PGID, h.Fenced = machineID(), g.pgid, true
	l.Dead = previousRunIsOver(l)
	prev, err := l.Acquire(ctx, &h)
	var held *HeldError
	var refused *RefusedError
	switch {
	case errors.As(err, &held), errors.As(err, &refused):
		g.kill()
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitHeld
	case err != nil:
		g.kill()
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "stacklock: locked %s (lease %s, renewed every %s)\n", l.Key, l.Lease, l.Lease/4)
	if prev != nil {
		_, found := l.Dead(*prev)
		fmt.Fprintf(stderr, "stacklock: WARNING: took over an expired lock; its run ended without releasing it (%s):\n  %s", found, prev.Describe(time.Now()))
		fmt.Fprintf(stderr, "stacklock: clearing the lock file that run left in the Pulumi backend: %s cancel --yes --stack %s\n", pulumiBin, stack)
		c := exec.CommandContext(ctx, pulumiBin, "cancel", "--yes", "--stack", stack)
		c.Stdout, c.Stderr = stderr, stderr
		if err := c.Run(); err != nil {
			fmt.Fprintf(stderr, "stacklock: WARNING: %s cancel failed (%v); if the command reports the stack as locked, run it by hand\n", pulumiBin, err)
		}
	}

	code := supervise(l, &h, g, cmd, stderr)

	// Release with a fresh context: the run's may be cancelled by now.
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Release(rctx, h); err != nil {
		fmt.Fprintf(stderr, "stacklock: WARNING: releasing the lock: %v\n", err)
	} else {
		fmt.Fprintf(stderr, "stacklock: released %s\n", l.Key)
	}
	if err := l.Record(rctx, Run{Holder: h, Ended: time.Now(), ExitCode: code}); err != nil {
		fmt.Fprintf(stderr, "stacklock: WARNING: recording history: %v\n", err)
	}
	return code
}

// supervise runs cmd in g, renewing the lease and forwarding signals, and
// returns its exit code (128+signal when a signal ended it). When the
// command ends, what is left of its group is killed before the lock is
// released. When the lease cannot be renewed in time, or the lock was taken
// from us, the command is stopped (fenced): SIGTERM to its group, then
// SIGKILL an eighth of a lease before the lease ends, so it never runs on
// past the lease that another run may take over.
func supervise(l *Lock, h *Holder, g *group, cmd []string, stderr io.Writer) int {
	defer g.kill()
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	g.join(c)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		fmt.Fprintf(stderr, "stacklock: starting %s: %v\n", cmd[0], err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	tick := time.NewTicker(l.Lease / 4)
	defer tick.Stop()
	var killNow <-chan time.Time
	// A terminal delivers Ctrl-C to its foreground group: the command's
	// (startGroup); forwarding it again would make Pulumi treat it as a
	// second, forceful Ctrl-C.
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	fenced := false
	fence := func(why string) {
		if fenced {
			return
		}
		fenced = true
		at := time.Until(h.LeaseUntil.Add(-l.Lease / 8))
		fmt.Fprintf(stderr, "stacklock: %s: stopping %s so that it cannot overlap the next deploy (SIGTERM now, SIGKILL in %s)\n", why, cmd[0], max(at, 0).Round(time.Millisecond))
		_ = g.signal(syscall.SIGTERM)
		killNow = time.After(max(at, 0))
	}
	for {
		select {
		case err := <-done:
			return exitCode(c, err)
		case sig := <-sigs:
			if sig == syscall.SIGINT && tty {
				continue
			}
			fmt.Fprintf(stderr, "stacklock: got %s, passing it to %s; the lock is released when it exits\n", sig, cmd[0])
			_ = c.Process.Signal(sig)
		case <-killNow:
			g.kill()
		case <-tick.C:
			if fenced {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.Lease/4)
			err := l.Renew(ctx, h)
			cancel()
			switch {
			case errors.Is(err, ErrLost):
				fmt.Fprintf(stderr, "stacklock: WARNING: %v\n", err)
				fence("the lock is no longer ours")
			case err != nil && time.Until(h.LeaseUntil) <= l.Lease/4:
				fmt.Fprintf(stderr, "stacklock: WARNING: renewing the lease: %v\n", err)
				fence("the lease could not be renewed and ends at " + h.LeaseUntil.UTC().Format(time.RFC3339))
			case err != nil:
				fmt.Fprintf(stderr, "stacklock: WARNING: renewing the lease: %v (retrying)\n", err)
			}
		}
	}
}

func exitCode(c *exec.Cmd, err error) int {
	st := c.ProcessState
	switch {
	case err == nil:
		return 0
	case st == nil: // Wait failed without the process ending normally
		return exitFailed
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

func status(ctx context.Context, l *Lock, historyN int, stdout, stderr io.Writer) int {
	h, found, err := l.Get(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	now := time.Now()
	if found {
		fmt.Fprintf(stdout, "%s: LOCKED, %s", l.Key, h.Describe(now))
	} else {
		fmt.Fprintf(stdout, "%s: free\n", l.Key)
	}
	runs, err := l.History(ctx, historyN)
	if err != nil {
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	if len(runs) > 0 {
		fmt.Fprintf(stdout, "last %d runs:\n", len(runs))
		fmt.Fprintf(stdout, "  %-20s  %8s  %4s  %-12s  %-9s  %s\n", "started (UTC)", "took", "exit", "commit", "by", "command")
	}
	for _, r := range runs {
		commit := r.Commit
		if len(commit) > 12 {
			commit = commit[:12]
		}
		fmt.Fprintf(stdout, "  %-20s  %8s  %4d  %-12s  %-9s  %s\n", r.Acquired.UTC().Format("2006-01-02 15:04:05"),
			r.Ended.Sub(r.Acquired).Round(time.Second), r.ExitCode, commit, r.Owner, r.Command)
	}
	return 0
}

func unlock(ctx context.Context, l *Lock, force bool, stdout, stderr io.Writer) int {
	h, found, err := l.Get(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	if !found {
		fmt.Fprintf(stdout, "%s is not locked\n", l.Key)
		return 0
	}
	if !force {
		fmt.Fprintf(stderr, "stacklock: %s is %sBreaking it lets another deploy start while that one may still run; add --force if you are sure.\n", l.Key, h.Describe(time.Now()))
		return exitUsage
	}
	if err := l.Break(ctx); err != nil {
		fmt.Fprintf(stderr, "stacklock: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "broke the lock on %s (was %s)", l.Key, h.Describe(time.Now()))
	fmt.Fprintf(stdout, "If that run died, its Pulumi lock file may remain too: pulumi cancel --yes --stack %s\n", l.Key[strings.LastIndex(l.Key, "/")+1:])
	return 0
}
