package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute names; infra/backend declares the table with the same hash key
// and TTL attribute.
const (
	attrKey     = "LockID"
	attrTTL     = "expires_at"
	historyPart = "#history#"
	// historyKeep is how long DynamoDB keeps a history item.
	historyKeep = 180 * 24 * time.Hour
)

// Holder is who holds a lock, as stored in its item.
type Holder struct {
	Key        string
	Token      string // random per run: only its owner may renew or release
	Owner      string
	Host       string
	PID        int
	RunURL     string
	Command    string
	Commit     string
	Acquired   time.Time
	LeaseUntil time.Time
	// Machine identifies the host, boot and PID namespace (machineID), so
	// PID and PGID can be checked where they mean the same processes.
	Machine string
	PGID    int // the command's process group
	// Fenced: this holder stops its command before its lease ends when it
	// cannot renew, and takes it along if it dies (reaper), so an expired
	// lease means nothing of its run is left.
	Fenced bool
	Lease  time.Duration // the holder's lease length
}

// Expired reports whether the lease ran out at now.
func (h Holder) Expired(now time.Time) bool { return now.After(h.LeaseUntil) }

// Describe is the human account of a holder used in errors and status.
func (h Holder) Describe(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "held by %s on %s (pid %d) since %s (%s ago)\n", h.Owner, h.Host, h.PID,
		h.Acquired.UTC().Format(time.RFC3339), now.Sub(h.Acquired).Round(time.Second))
	fmt.Fprintf(&b, "  running: %s\n", h.Command)
	if h.RunURL != "" {
		fmt.Fprintf(&b, "  run:     %s\n", h.RunURL)
	}
	if h.Commit != "" {
		fmt.Fprintf(&b, "  commit:  %s\n", h.Commit)
	}
	if h.Expired(now) {
		fmt.Fprintf(&b, "  lease:   expired %s ago (its holder stopped renewing it)\n", now.Sub(h.LeaseUntil).Round(time.Second))
	} else {
		fmt.Fprintf(&b, "  lease:   until %s (renewed while the command runs)\n", h.LeaseUntil.UTC().Format(time.RFC3339))
	}
	return b.String()
}

// HeldError is returned when someone else holds a live lock.
type HeldError struct {
	Holder Holder
	Table  string
	Now    time.Time
}

func (e *HeldError) Error() string {
	h := e.Holder
	return fmt.Sprintf("%s is locked: %s"+
		"Wait for that run to finish. If it is dead, its lease expires in %s and the next run takes over,\n"+
		"or break the lock now (only if you are sure nothing runs):\n"+
		"  stacklock unlock --table %s --key %s --force",
		h.Key, h.Describe(e.Now), h.LeaseUntil.Sub(e.Now).Round(time.Second), e.Table, h.Key)
}

// RefusedError is an expired lock whose holder may still be running: it is
// not taken over, and Pulumi's own lock is left alone.
type RefusedError struct {
	Holder Holder
	Found  string // what the liveness check found
	Table  string
	Stack  string
	Now    time.Time
}

func (e *RefusedError) Error() string {
	h := e.Holder
	stop := "stop it there"
	if h.PGID > 0 {
		stop = fmt.Sprintf("stop it there: kill -- -%d on %s", h.PGID, h.Host)
	}
	return fmt.Sprintf("%s: the lease has expired, but its run may still be going, so the lock is not taken over\n"+
		"and Pulumi's own lock is left in place: %s\n  %s"+
		"If that run is still going, wait for it to end or %s, then run again.\n"+
		"If you are sure it is dead, break both locks and run again:\n"+
		"  stacklock unlock --table %s --key %s --force\n"+
		"  pulumi cancel --yes --stack %s",
		h.Key, e.Found, h.Describe(e.Now), stop, e.Table, h.Key, e.Stack)
}

// ErrLost means the lock was broken or taken over while we held it.
var ErrLost = errors.New("the lock is no longer ours (broken with unlock --force, or taken over after our lease expired)")

// DB is the part of the DynamoDB client the lock uses.
type DB interface {
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Lock is one key in one table.
type Lock struct {
	DB    DB
	Table string
	Key   string
	Lease time.Duration
	Now   func() time.Time
	// Dead, when set, is asked before an expired lock is taken over
	// whether its holder's run is certainly over, and what it found.
	Dead func(prev Holder) (dead bool, found string)
	// Stack is the Pulumi stack a RefusedError tells how to unlock.
	Stack string
}

// takeoverGrace is how long past its lease an expired lock is left alone,
// for clock skew between machines: a holder that cannot renew stops its
// command an eighth of its lease before the lease ends, by its own clock;
// the grace is a quarter of the holder's lease (of ours if it did not say).
func (l *Lock) takeoverGrace(h Holder) time.Duration {
	if h.Lease > 0 {
		return h.Lease / 4
	}
	return l.Lease / 4
}

func (l *Lock) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func (l *Lock) item(h Holder) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrKey:       s(l.Key),
		"token":       s(h.Token),
		"owner":       s(h.Owner),
		"host":        s(h.Host),
		"pid":         n(int64(h.PID)),
		"run_url":     s(h.RunURL),
		"command":     s(h.Command),
		"commit":      s(h.Commit),
		"acquired_at": s(h.Acquired.UTC().Format(time.RFC3339Nano)),
		"lease_until": s(h.LeaseUntil.UTC().Format(time.RFC3339Nano)),
		"machine":     s(h.Machine),
		"pgid":        n(int64(h.PGID)),
		"fenced":      &types.AttributeValueMemberBOOL{Value: h.Fenced},
		"lease_ms":    n(h.Lease.Milliseconds()),
		// DynamoDB's TTL removes an abandoned lock a day after its lease.
		attrTTL: n(h.LeaseUntil.Add(24 * time.Hour).Unix()),
	}
}

func holderFrom(it map[string]types.AttributeValue) Holder {
	str := func(k string) string {
		if v, ok := it[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	h := Holder{Key: str(attrKey), Token: str("token"), Owner: str("owner"), Host: str("host"),
		RunURL: str("run_url"), Command: str("command"), Commit: str("commit")}
	if v, ok := it["pid"].(*types.AttributeValueMemberN); ok {
		h.PID, _ = strconv.Atoi(v.Value)
	}
	if v, ok := it["pgid"].(*types.AttributeValueMemberN); ok {
		h.PGID, _ = strconv.Atoi(v.Value)
	}
	if v, ok := it["fenced"].(*types.AttributeValueMemberBOOL); ok {
		h.Fenced = v.Value
	}
	h.Machine = str("machine")
	if v, ok := it["lease_ms"].(*types.AttributeValueMemberN); ok {
		ms, _ := strconv.ParseInt(v.Value, 10, 64)
		h.Lease = time.Duration(ms) * time.Millisecond
	}
	h.Acquired, _ = time.Parse(time.RFC3339Nano, str("acquired_at"))
	h.LeaseUntil, _ = time.Parse(time.RFC3339Nano, str("lease_until"))
	return h
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// Acquire takes the lock for h. A live lock held by someone else is a
// *HeldError; an expired one is taken over atomically (only one of several
// takers wins), and the previous holder is returned so the caller can
// clean up after it.
func (l *Lock) Acquire(ctx context.Context, h *Holder) (previous *Holder, err error) {
	now := l.now()
	h.Key, h.Token, h.Acquired, h.LeaseUntil, h.Lease = l.Key, newToken(), now, now.Add(l.Lease), l.Lease
	_, err = l.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &l.Table,
		Item:                l.item(*h),
		ConditionExpression: aws.String("attribute_not_exists(" + attrKey + ")"),
	})
	if err == nil {
		return nil, nil
	}
	if !conditionFailed(err) {
		return nil, fmt.Errorf("writing the lock item to table %s: %w", l.Table, err)
	}
	cur, found, err := l.Get(ctx)
	if err != nil {
		return nil, err
	}
	if !found { // released between our put and our read: try once more
		return l.Acquire(ctx, h)
	}
	if !cur.Expired(now.Add(-l.takeoverGrace(cur))) {
		return nil, &HeldError{Holder: cur, Table: l.Table, Now: now}
	}
	if l.Dead != nil {
		if dead, found := l.Dead(cur); !dead {
			return nil, &RefusedError{Holder: cur, Found: found, Table: l.Table, Stack: l.Stack, Now: now}
		}
	}
	_, err = l.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &l.Table,
		Item:                      l.item(*h),
		ConditionExpression:       aws.String("#t = :old"),
		ExpressionAttributeNames:  map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":old": s(cur.Token)},
	})
	if conditionFailed(err) {
		// Someone else took it over first.
		if now2, ok, err2 := l.Get(ctx); err2 == nil && ok {
			return nil, &HeldError{Holder: now2, Table: l.Table, Now: l.now()}
		}
		return nil, fmt.Errorf("taking over the expired lock of %s: another run was faster", cur.Owner)
	}
	if err != nil {
		return nil, fmt.Errorf("taking over the expired lock: %w", err)
	}
	return &cur, nil
}

// Renew extends the lease of the lock h holds.
func (l *Lock) Renew(ctx context.Context, h *Holder) error {
	until := l.now().Add(l.Lease)
	_, err := l.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &l.Table,
		Key:                      map[string]types.AttributeValue{attrKey: s(l.Key)},
		UpdateExpression:         aws.String("SET lease_until = :u, " + attrTTL + " = :ttl"),
		ConditionExpression:      aws.String("#t = :tok"),
		ExpressionAttributeNames: map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":u": s(until.UTC().Format(time.RFC3339Nano)), ":ttl": n(until.Add(24 * time.Hour).Unix()), ":tok": s(h.Token),
		},
	})
	if conditionFailed(err) {
		return ErrLost
	}
	if err == nil {
		h.LeaseUntil = until
	}
	return err
}

// Release drops the lock if h still holds it.
func (l *Lock) Release(ctx context.Context, h Holder) error {
	_, err := l.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &l.Table,
		Key:                       map[string]types.AttributeValue{attrKey: s(l.Key)},
		ConditionExpression:       aws.String("#t = :tok"),
		ExpressionAttributeNames:  map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":tok": s(h.Token)},
	})
	if conditionFailed(err) {
		return ErrLost
	}
	return err
}

// Get reads the current lock item.
func (l *Lock) Get(ctx context.Context) (Holder, bool, error) {
	out, err := l.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &l.Table,
		Key:            map[string]types.AttributeValue{attrKey: s(l.Key)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Holder{}, false, fmt.Errorf("reading the lock from table %s: %w", l.Table, err)
	}
	if len(out.Item) == 0 {
		return Holder{}, false, nil
	}
	return holderFrom(out.Item), true, nil
}

// Break deletes the lock whoever holds it.
func (l *Lock) Break(ctx context.Context) error {
	_, err := l.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &l.Table,
		Key:       map[string]types.AttributeValue{attrKey: s(l.Key)},
	})
	return err
}

// Run is one finished deploy, kept as a history item.
type Run struct {
	Holder
	Ended    time.Time
	ExitCode int
}

// Record writes a history item for a finished run.
func (l *Lock) Record(ctx context.Context, r Run) error {
	it := l.item(r.Holder)
	it[attrKey] = s(l.Key + historyPart + r.Acquired.UTC().Format(time.RFC3339Nano) + "#" + r.Token)
	it["lock"] = s(l.Key)
	it["ended_at"] = s(r.Ended.UTC().Format(time.RFC3339Nano))
	it["exit_code"] = n(int64(r.ExitCode))
	it[attrTTL] = n(r.Ended.Add(historyKeep).Unix())
	delete(it, "lease_until")
	_, err := l.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &l.Table, Item: it})
	return err
}

// History returns the recorded runs of the key, newest first.
func (l *Lock) History(ctx context.Context, limit int) ([]Run, error) {
	var runs []Run
	var start map[string]types.AttributeValue
	for {
		out, err := l.DB.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 &l.Table,
			FilterExpression:          aws.String("begins_with(" + attrKey + ", :p)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": s(l.Key + historyPart)},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, fmt.Errorf("reading history from table %s: %w", l.Table, err)
		}
		for _, it := range out.Items {
			r := Run{Holder: holderFrom(it)}
			r.Key = l.Key
			if v, ok := it["ended_at"].(*types.AttributeValueMemberS); ok {
				r.Ended, _ = time.Parse(time.RFC3339Nano, v.Value)
			}
			if v, ok := it["exit_code"].(*types.AttributeValueMemberN); ok {
				r.ExitCode, _ = strconv.Atoi(v.Value)
			}
			runs = append(runs, r)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	slices.SortFunc(runs, func(a, b Run) int { return b.Acquired.Compare(a.Acquired) }) // newest first
	if limit > 0 && len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}
