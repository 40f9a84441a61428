//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runningCommand is a `stacklock run` whose command has started.
type runningCommand struct {
	cmd   *exec.Cmd
	out   *syncBuffer
	start time.Time // when the command itself started (its own clock read)
	pgid  int
}

// startHolding starts `stacklock run` until one gets the lock and its
// command starts (attempts that find the lock held exit 75 and are
// retried). The command notes its start time and pid, then waits on a
// grandchild, as pulumi waits on its plugins. On failure it reports with
// t.Errorf (it may run in its own goroutine) and returns nil.
func startHolding(t *testing.T, l *Lock, dir, pulumi string, n int) *runningCommand {
	t.Helper()
	note := filepath.Join(dir, fmt.Sprintf("started-%d", n))
	script := fmt.Sprintf(`echo "$(date +%%s%%N) $$" > %[1]s.tmp && mv %[1]s.tmp %[1]s; sleep 30 & wait`, note)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cmd, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--lease", "1s", "--pulumi", pulumi, "--", "sh", "-c", script)
		exited := make(chan int, 1)
		go func() { _ = cmd.Wait(); exited <- cmd.ProcessState.ExitCode() }()
		for {
			if b, err := os.ReadFile(note); err == nil {
				f := strings.Fields(string(b))
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				pid, _ := strconv.Atoi(f[1])
				pgid, err := syscall.Getpgid(pid)
				if err != nil {
					t.Errorf("run %d: the command (pid %d) is gone already: %v\n%s", n, pid, err, out)
					return nil
				}
				return &runningCommand{cmd: cmd, out: out, start: time.Unix(0, ns), pgid: pgid}
			}
			select {
			case code := <-exited:
				if code != exitHeld {
					t.Errorf("run %d: stacklock exited %d:\n%s", n, code, out)
					return nil
				}
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("run %d never got the lock", n)
	return nil
}

// TestKilledHolderTakesItsCommandAndRunsNeverOverlap: SIGKILL the
// stacklock process while its command runs (a cancelled CI job, an OOM
// kill); the command and its children must be gone within a second, and
// the next run, already trying while they die, must start only after they
// are gone. Repeated, each run taking over from the one before.
func TestKilledHolderTakesItsCommandAndRunsNeverOverlap(t *testing.T) {
	l := setup(t)
	dir := t.TempDir()
	pulumi := filepath.Join(dir, "pulumi")
	calls := filepath.Join(dir, "pulumi-calls")
	os.WriteFile(pulumi, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755)

	const runs = 3
	cur := startHolding(t, l, dir, pulumi, 0)
	if cur == nil {
		t.FailNow()
	}
	for i := range runs {
		// Watch the holder's process group from now until it is empty.
		var lastAlive atomic.Int64
		gone := make(chan time.Time, 1)
		go func(pgid int) {
			for {
				if alive, _ := localLiveness(-1, pgid); !alive {
					gone <- time.Now()
					return
				}
				lastAlive.Store(time.Now().UnixNano())
				time.Sleep(5 * time.Millisecond)
			}
		}(cur.pgid)
		// The next run starts trying before the holder dies.
		next := make(chan *runningCommand, 1)
		if i+1 < runs {
			go func() { next <- startHolding(t, l, dir, pulumi, i+1) }()
		}
		time.Sleep(100 * time.Millisecond)
		killed := time.Now()
		if err := cur.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-gone:
			// Generous against a loaded machine; without the reaper the
			// command (sleep 30) lives on for half a minute.
			if d := at.Sub(killed); d > time.Second {
				t.Errorf("run %d: its command took %s to die after stacklock was killed", i, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("run %d: stacklock was SIGKILLed, its command (process group %d) still runs 5s later:\n%s", i, cur.pgid, cur.out)
		}
		if i+1 == runs {
			break
		}
		n := <-next
		if n == nil {
			t.FailNow()
		}
		if end := time.Unix(0, lastAlive.Load()); !n.start.After(end) {
			t.Fatalf("run %d started at %s while run %d's command was still alive at %s", i+1, n.start.Format(time.StampMicro), i, end.Format(time.StampMicro))
		}
		out := n.out.String()
		if !strings.Contains(out, "took over an expired lock") || !strings.Contains(out, "are gone from this machine") {
			t.Errorf("run %d's takeover did not say what it found:\n%s", i+1, out)
		}
		cur = n
	}
	b, _ := os.ReadFile(calls)
	if got := strings.Count(string(b), "cancel --yes --stack dev"); got != runs-1 {
		t.Errorf("pulumi cancel ran %d times, want once per takeover (%d):\n%s", got, runs-1, b)
	}
}

// A lock whose lease has expired but whose run is still alive on this
// machine (its process group has live processes) is not taken over, and
// Pulumi's lock is not cleared; the message says what was found and how to
// resolve it.
func TestTakeoverRefusedWhileTheRunIsAlive(t *testing.T) {
	l := setup(t)
	dir := t.TempDir()
	alive := exec.Command("sleep", "60")
	alive.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := alive.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = alive.Process.Kill(); _ = alive.Wait() }()
	stale := &Lock{DB: l.DB, Table: l.Table, Key: l.Key, Lease: time.Second, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	h := &Holder{Owner: "ci", Host: "here", PID: 999999, PGID: alive.Process.Pid, Machine: machineID(), Fenced: true, Command: "pulumi up"}
	if _, err := stale.Acquire(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	pulumi := filepath.Join(dir, "pulumi")
	calls := filepath.Join(dir, "pulumi-calls")
	os.WriteFile(pulumi, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755)
	cmd, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--pulumi", pulumi, "--", "touch", filepath.Join(dir, "ran"))
	if code := wait(t, cmd); code != exitHeld {
		t.Fatalf("exit %d, want %d:\n%s", code, exitHeld, out)
	}
	for _, want := range []string{"still running on this machine", strconv.Itoa(alive.Process.Pid) + " sleep", "kill -- -" + strconv.Itoa(alive.Process.Pid), "unlock --table " + table, "pulumi cancel --yes --stack dev"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran although the previous run is alive")
	}
	if _, err := os.Stat(calls); err == nil {
		t.Error("pulumi cancel ran although the previous run is alive")
	}
}

// A holder on another machine that does not fence itself (an older
// stacklock) cannot be judged from here: refuse, and say how to resolve.
func TestTakeoverRefusedWhenItCannotTell(t *testing.T) {
	l := setup(t)
	stale := &Lock{DB: l.DB, Table: l.Table, Key: l.Key, Lease: time.Second, Now: func() time.Time { return time.Now().Add(-time.Hour) }}
	if _, err := stale.Acquire(context.Background(), &Holder{Owner: "ci", Host: "runner-7", PID: 4242, Machine: "elsewhere", Command: "pulumi up"}); err != nil {
		t.Fatal(err)
	}
	cmd, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--", "true")
	if code := wait(t, cmd); code != exitHeld {
		t.Fatalf("exit %d, want %d:\n%s", code, exitHeld, out)
	}
	for _, want := range []string{"cannot be told from here", "runner-7", "unlock --table " + table + " --key " + l.Key + " --force", "pulumi cancel --yes --stack dev"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("refusal lacks %q:\n%s", want, out)
		}
	}
	// The same holder, had it promised to fence itself, is taken over.
	if err := l.Break(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Acquire(context.Background(), &Holder{Owner: "ci", Host: "runner-7", PID: 4242, Machine: "elsewhere", Fenced: true}); err != nil {
		t.Fatal(err)
	}
	pulumi := filepath.Join(t.TempDir(), "pulumi")
	os.WriteFile(pulumi, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	cmd, out = stacklock(t, "run", "--table", table, "--key", l.Key, "--pulumi", pulumi, "--", "true")
	if code := wait(t, cmd); code != 0 || !strings.Contains(out.String(), "took over an expired lock") {
		t.Fatalf("fenced remote holder not taken over: exit %d\n%s", code, out)
	}
}
