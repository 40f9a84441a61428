package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"microk8s-platform/internal/moto"
)

const table = "microk8s-platform-locks"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stacklock")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "stacklock")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic(string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup starts the emulator and creates the table as infra/backend does.
func setup(t *testing.T) *Lock {
	t.Helper()
	moto.Start(t)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(attrKey), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(attrKey), KeyType: types.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	return &Lock{DB: db, Table: table, Key: "microk8s-platform/dev", Lease: time.Minute}
}

// stacklock starts the binary; the returned buffer fills with its stderr.
func stacklock(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "GITHUB_ACTOR=", "GITHUB_RUN_ID=", "GITHUB_SHA=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &out
}

func wait(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	_ = cmd.Wait()
	return cmd.ProcessState.ExitCode()
}

// waitFor polls until cond holds or 30s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func exists(path string) func() bool {
	return func() bool { _, err := os.Stat(path); return err == nil }
}

func TestConcurrentRunsExactlyOneRuns(t *testing.T) {
	l := setup(t)
	dir := t.TempDir()
	// Each command marks that it ran, then holds the lock until released.
	release := filepath.Join(dir, "release")
	script := func(n string) string {
		return "touch " + filepath.Join(dir, "ran-"+n) + "; while [ ! -e " + release + " ]; do sleep 0.05; done"
	}
	a, aOut := stacklock(t, "run", "--table", table, "--key", l.Key, "--", "sh", "-c", script("a"))
	b, bOut := stacklock(t, "run", "--table", table, "--key", l.Key, "--", "sh", "-c", script("b"))
	waitFor(t, "one command to start", func() bool { return exists(filepath.Join(dir, "ran-a"))() || exists(filepath.Join(dir, "ran-b"))() })

	// The loser fails fast, without running, naming the holder.
	var loser *exec.Cmd
	var loserOut, winnerOut *syncBuffer
	if exists(filepath.Join(dir, "ran-a"))() {
		loser, loserOut, winnerOut = b, bOut, aOut
	} else {
		loser, loserOut, winnerOut = a, aOut, bOut
	}
	if code := wait(t, loser); code != exitHeld {
		t.Fatalf("second run exited %d, want %d:\n%s", code, exitHeld, loserOut)
	}
	msg := loserOut.String()
	for _, want := range []string{"is locked", "held by", "running: sh -c", "unlock --table " + table + " --key " + l.Key + " --force"} {
		if !strings.Contains(msg, want) {
			t.Errorf("held-lock message lacks %q:\n%s", want, msg)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "ran-*")); len(n) != 1 {
		t.Fatalf("%d commands ran", len(n))
	}
	h, found, err := l.Get(context.Background())
	if err != nil || !found || h.PID == 0 || !strings.HasPrefix(h.Command, "sh -c touch") {
		t.Fatalf("lock item while held: %+v found=%v err=%v", h, found, err)
	}

	os.WriteFile(release, nil, 0o644)
	winner := a
	if loser == a {
		winner = b
	}
	if code := wait(t, winner); code != 0 {
		t.Fatalf("winner exited %d:\n%s", code, winnerOut)
	}
	if _, found, _ := l.Get(context.Background()); found {
		t.Error("lock still held after the command ended")
	}
}

func TestExitCodeComesBackAndHistoryIsWritten(t *testing.T) {
	l := setup(t)
	for _, code := range []string{"0", "3"} {
		cmd, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--", "sh", "-c", "exit "+code)
		if got := wait(t, cmd); got != map[string]int{"0": 0, "3": 3}[code] {
			t.Fatalf("exit %d, want %s:\n%s", got, code, out)
		}
	}
	runs, err := l.History(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ExitCode != 3 || runs[1].ExitCode != 0 {
		t.Fatalf("history %+v, want two runs, newest (exit 3) first", runs)
	}
	for _, r := range runs {
		if r.Ended.Before(r.Acquired) || r.Acquired.IsZero() || r.Command == "" || r.Owner == "" || r.Host == "" {
			t.Errorf("history item incomplete: %+v", r)
		}
	}
	var status bytes.Buffer
	if code := run([]string{"status", "--table", table, "--key", l.Key}, &status, &status); code != 0 {
		t.Fatalf("status exit %d: %s", code, &status)
	}
	if !strings.Contains(status.String(), l.Key+": free") || !strings.Contains(status.String(), "last 2 runs") {
		t.Errorf("status:\n%s", &status)
	}
}

func TestSIGTERMReachesTheCommandAndReleasesTheLock(t *testing.T) {
	l := setup(t)
	dir := t.TempDir()
	started, got := filepath.Join(dir, "started"), filepath.Join(dir, "got-term")
	cmd, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--", "sh", "-c",
		"trap 'touch "+got+"; exit 143' TERM; touch "+started+"; while :; do sleep 0.05; done")
	waitFor(t, "the command to start", exists(started))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := wait(t, cmd); code != 143 {
		t.Fatalf("exit %d, want the command's 143:\n%s", code, out)
	}
	if !exists(got)() {
		t.Error("the command never saw SIGTERM")
	}
	if _, found, _ := l.Get(context.Background()); found {
		t.Errorf("lock left behind after SIGTERM:\n%s", out)
	}
	if runs, _ := l.History(context.Background(), 0); len(runs) != 1 || runs[0].ExitCode != 143 {
		t.Errorf("history after SIGTERM: %+v", runs)
	}
}

func TestExpiredLeaseIsTakenOverAndPulumiLockCleared(t *testing.T) {
	l := setup(t)
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	// A run that dies hard (SIGKILL, like a cancelled runner) leaves its lock.
	dead, _ := stacklock(t, "run", "--table", table, "--key", l.Key, "--lease", "1s", "--", "sh", "-c", "touch "+started+"; sleep 3")
	waitFor(t, "the first command to start", exists(started))
	_ = dead.Process.Kill()
	_ = dead.Wait()
	if _, found, _ := l.Get(context.Background()); !found {
		t.Fatal("a killed run left no lock; the test proves nothing")
	}

	// Once its lease ends (and a quarter lease of grace for clock skew),
	// the next run takes over and clears Pulumi's lock file.
	time.Sleep(1300 * time.Millisecond)
	pulumi := filepath.Join(dir, "pulumi")
	calls := filepath.Join(dir, "pulumi-calls")
	os.WriteFile(pulumi, []byte("#!/bin/sh\necho \"$@\" >> "+calls+"\n"), 0o755)
	next, out := stacklock(t, "run", "--table", table, "--key", l.Key, "--pulumi", pulumi, "--", "sh", "-c", "echo deployed")
	if code := wait(t, next); code != 0 {
		t.Fatalf("takeover run exited %d:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "took over an expired lock") || !strings.Contains(out.String(), "deployed") {
		t.Errorf("takeover output:\n%s", out)
	}
	b, _ := os.ReadFile(calls)
	if strings.TrimSpace(string(b)) != "cancel --yes --stack dev" {
		t.Errorf("pulumi called with %q, want cancel --yes --stack dev", b)
	}
	if _, found, _ := l.Get(context.Background()); found {
		t.Error("lock not released after the takeover run")
	}
}

func TestLiveLeaseIsNotTakenOver(t *testing.T) {
	l := setup(t)
	other := &Holder{Owner: "alice", Host: "laptop", PID: 42, Command: "pulumi up --stack dev"}
	if _, err := l.Acquire(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	contender := &Lock{DB: l.DB, Table: l.Table, Key: l.Key, Lease: time.Minute}
	_, err := contender.Acquire(context.Background(), &Holder{Owner: "bob"})
	held, ok := err.(*HeldError)
	if !ok || held.Holder.Owner != "alice" || held.Holder.Token != other.Token {
		t.Fatalf("contender got %v, want a HeldError naming alice", err)
	}
	// Renewal by the holder works; by anyone else it does not.
	if err := l.Renew(context.Background(), other); err != nil {
		t.Errorf("holder cannot renew: %v", err)
	}
	if err := l.Renew(context.Background(), &Holder{Token: "not-ours"}); err != ErrLost {
		t.Errorf("renewing someone else's lock: %v, want ErrLost", err)
	}
	if err := l.Release(context.Background(), Holder{Token: "not-ours"}); err != ErrLost {
		t.Errorf("releasing someone else's lock: %v, want ErrLost", err)
	}
}

func TestUnlockNeedsForce(t *testing.T) {
	l := setup(t)
	if _, err := l.Acquire(context.Background(), &Holder{Owner: "alice", Command: "pulumi up"}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run([]string{"unlock", "--table", table, "--key", l.Key}, &out, &out); code != exitUsage || !strings.Contains(out.String(), "--force") {
		t.Fatalf("unlock without --force: exit %d\n%s", code, &out)
	}
	if _, found, _ := l.Get(context.Background()); !found {
		t.Fatal("unlock without --force removed the lock")
	}
	out.Reset()
	if code := run([]string{"unlock", "--table", table, "--key", l.Key, "--force"}, &out, &out); code != 0 {
		t.Fatalf("unlock --force: exit %d\n%s", code, &out)
	}
	if _, found, _ := l.Get(context.Background()); found {
		t.Fatal("lock still there after unlock --force")
	}
	if !strings.Contains(out.String(), "pulumi cancel --yes --stack dev") {
		t.Errorf("unlock does not mention Pulumi's own lock:\n%s", &out)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("LOCK_TABLE", "")
	for _, args := range [][]string{nil, {"run", "--key", "p/s", "--", "true"}, {"run", "--table", "t", "--key", "p/s"}, {"frobnicate", "--table", "t", "--key", "k"}} {
		var out bytes.Buffer
		if code := run(args, &out, &out); code != exitUsage || !strings.Contains(out.String(), "usage:") {
			t.Errorf("%v: exit %d\n%s", args, code, &out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a process's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
