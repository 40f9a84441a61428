package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"microk8s-platform/service/internal/pgtest"
	"microk8s-platform/service/store"
)

// A Pending store answers ErrNotReady while its database is down and, once
// the wait times out, the last error; it never blocks a caller.
func TestPendingStoreGivesUpAfterItsTimeout(t *testing.T) {
	port, err := pgtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var attempts int
	p, err := store.ConnectPostgres(context.Background(), fmt.Sprintf("postgres://u:secretpw@127.0.0.1:%d/x?sslmode=disable", port), store.WaitOptions{
		Timeout: time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnRetry: func(int, error, time.Duration) { attempts++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Ping(context.Background()); !errors.Is(err, store.ErrNotReady) {
		t.Fatalf("Ping while waiting = %v, want ErrNotReady", err)
	}
	if _, err := p.List(context.Background(), "1"); !errors.Is(err, store.ErrNotReady) {
		t.Fatalf("List while waiting = %v, want ErrNotReady", err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end after its 1s timeout")
	}
	if p.Err() == nil || errors.Is(p.Ping(context.Background()), store.ErrNotReady) {
		t.Fatalf("after giving up: Err=%v Ping=%v", p.Err(), p.Ping(context.Background()))
	}
	if strings.Contains(p.Err().Error(), "secretpw") {
		t.Errorf("the error shows the password: %v", p.Err())
	}
	if attempts < 3 {
		t.Errorf("%d attempts in 1s with a 50-200ms back-off", attempts)
	}
}

func TestPendingStoreConnectsWhenTheDatabaseAppears(t *testing.T) {
	url := newDatabase(t)
	p, err := store.ConnectPostgres(context.Background(), url, store.WaitOptions{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := p.Ping(context.Background()); err != nil || p.Err() != nil {
		t.Fatalf("Ping = %v, Err = %v", err, p.Err())
	}
	if err := p.Add(context.Background(), "1", store.Comment{Email: "a@example.com", Comment: "x"}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := p.Ping(context.Background()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Ping after Close = %v", err)
	}
}

func TestPendingStoreRejectsABadURLAtOnce(t *testing.T) {
	_, err := store.ConnectPostgres(context.Background(), "postgres://u:secretpw@[::1/x", store.WaitOptions{})
	if err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("err = %v", err)
	}
}
