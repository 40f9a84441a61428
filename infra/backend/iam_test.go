package backend

// The IAM evaluator (internal/iampolicy), failing the test on an operator
// it does not know.

import (
	"testing"

	"microk8s-platform/internal/iampolicy"
)

// request is one API call as IAM sees it (a local type, so the tables
// below may use unkeyed literals).
type request iampolicy.Request

func (r request) String() string { return iampolicy.Request(r).String() }

// allowed evaluates d for r, failing the test on an operator the
// evaluator does not know.
func allowed(t *testing.T, d PolicyDocument, r request) bool {
	t.Helper()
	ok, err := iampolicy.Allowed(d, iampolicy.Request(r))
	if err != nil {
		t.Fatalf("%v: %v", r, err)
	}
	return ok
}

// allowing returns the Sids of the allow statements that apply.
func allowing(t *testing.T, d PolicyDocument, r request) []string {
	t.Helper()
	out, err := iampolicy.Allowing(d, iampolicy.Request(r))
	if err != nil {
		t.Fatalf("%v: %v", r, err)
	}
	return out
}
