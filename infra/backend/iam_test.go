package backend

// An IAM evaluator small enough to read: action and resource matching with
// IAM's wildcards, explicit deny over allow, and the condition operators the
// policies use, with IAM's rules for missing keys and multi-valued keys
// (IAM User Guide, "Policy evaluation logic", "IAM JSON policy elements:
// Condition operators", "Set operators for multivalued context keys":
// a missing key fails StringEquals/StringLike, passes the negated operators
// and passes ForAllValues).

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// request is one API call as IAM sees it.
type request struct {
	Action   string
	Resource string
	Ctx      map[string][]string // condition keys present in the request
}

func (r request) String() string {
	return fmt.Sprintf("%s on %s %v", r.Action, r.Resource, r.Ctx)
}

// allowed evaluates d for r: an explicit deny wins, then any allow.
func allowed(t *testing.T, d PolicyDocument, r request) bool {
	t.Helper()
	allow := false
	for _, s := range d.Statement {
		if !statementApplies(t, s, r) {
			continue
		}
		if s.Effect == "Deny" {
			return false
		}
		allow = true
	}
	return allow
}

// allowing returns the Sids of the allow statements that apply.
func allowing(t *testing.T, d PolicyDocument, r request) []string {
	t.Helper()
	var out []string
	for _, s := range d.Statement {
		if s.Effect == "Allow" && statementApplies(t, s, r) {
			out = append(out, s.Sid)
		}
	}
	return out
}

func statementApplies(t *testing.T, s Statement, r request) bool {
	t.Helper()
	if !slices.ContainsFunc(s.Action, func(a string) bool { return matchFold(a, r.Action) }) {
		return false
	}
	if len(s.Resource) > 0 && !slices.ContainsFunc(s.Resource, func(p string) bool { return match(p, r.Resource) }) {
		return false
	}
	for op, kv := range s.Condition {
		for key, want := range kv {
			if !condition(t, op, values(want), r.Ctx[key], key) {
				return false
			}
		}
	}
	return true
}

func values(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []string:
		return v
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// condition evaluates one operator for one key. Condition keys are
// case-insensitive by name but values are compared case-sensitively
// (StringEquals) or with * and ? (StringLike).
func condition(t *testing.T, op string, want, got []string, key string) bool {
	t.Helper()
	set, base, _ := strings.Cut(op, ":")
	if base == "" {
		set, base = "", op
	}
	ifExists := strings.HasSuffix(base, "IfExists")
	base = strings.TrimSuffix(base, "IfExists")
	var one func(w, g string) bool
	negated := false
	switch base {
	case "StringEquals":
		one = func(w, g string) bool { return w == g }
	case "StringLike":
		one = match
	case "StringNotEquals":
		one, negated = func(w, g string) bool { return w == g }, true
	case "StringNotLike":
		one, negated = match, true
	case "Bool":
		one = func(w, g string) bool { return strings.EqualFold(w, g) }
	default:
		t.Fatalf("condition operator %s on %s: the evaluator does not know it", op, key)
	}
	matchesAny := func(g string) bool { return slices.ContainsFunc(want, func(w string) bool { return one(w, g) }) }
	if len(got) == 0 {
		// Missing key: ForAllValues is vacuously true, negated operators
		// true, ...IfExists true, everything else false.
		return set == "ForAllValues" || negated || ifExists
	}
	switch set {
	case "ForAllValues":
		for _, g := range got {
			if matchesAny(g) == negated {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, g := range got {
			if matchesAny(g) != negated {
				return true
			}
		}
		return false
	case "":
		if len(got) > 1 {
			t.Fatalf("single-valued operator %s on multivalued key %s=%v", op, key, got)
		}
		return matchesAny(got[0]) != negated
	}
	t.Fatalf("set operator %s unknown", set)
	return false
}

// match is IAM's wildcard matching: * any run of characters, ? one.
func match(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if match(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && match(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && match(pattern[1:], s[1:])
}

// Action names are case-insensitive (IAM JSON policy elements: Action).
func matchFold(pattern, s string) bool { return match(strings.ToLower(pattern), strings.ToLower(s)) }

func TestEvaluatorFollowsIAMRules(t *testing.T) {
	doc := PolicyDocument{Statement: []Statement{
		{Sid: "A", Effect: "Allow", Action: []string{"ec2:Describe*"}, Resource: []string{"*"}},
		{Sid: "B", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{"arn:aws:ec2:r:1:vpc/*"},
			Condition: map[string]map[string]any{"StringEquals": {"aws:RequestTag/stack": "dev", "ec2:CreateAction": []string{"CreateVpc", "RunInstances"}}}},
		{Sid: "C", Effect: "Allow", Action: []string{"ec2:DeleteTags"}, Resource: []string{"arn:aws:ec2:r:1:vpc/*"},
			Condition: map[string]map[string]any{"ForAllValues:StringNotEquals": {"aws:TagKeys": []string{"stack"}}}},
		{Sid: "D", Effect: "Deny", Action: []string{"ec2:DescribeVpcs"}, Resource: []string{"*"}},
	}}
	vpc := "arn:aws:ec2:r:1:vpc/vpc-1"
	for _, c := range []struct {
		r    request
		want bool
	}{
		{request{"ec2:DescribeSubnets", "*", nil}, true},
		{request{"EC2:describesubnets", "*", nil}, true},
		{request{"ec2:DescribeVpcs", "*", nil}, false}, // explicit deny
		{request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"dev"}, "ec2:CreateAction": {"CreateVpc"}}}, true},
		{request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"prod"}, "ec2:CreateAction": {"CreateVpc"}}}, false},
		{request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"dev"}}}, false}, // no create action: not at creation
		{request{"ec2:CreateTags", "arn:aws:ec2:r:1:subnet/s", map[string][]string{"aws:RequestTag/stack": {"dev"}, "ec2:CreateAction": {"CreateVpc"}}}, false},
		{request{"ec2:DeleteTags", vpc, map[string][]string{"aws:TagKeys": {"Name"}}}, true},
		{request{"ec2:DeleteTags", vpc, map[string][]string{"aws:TagKeys": {"Name", "stack"}}}, false},
		{request{"ec2:DeleteTags", vpc, nil}, true}, // ForAllValues with no key
	} {
		if got := allowed(t, doc, c.r); got != c.want {
			t.Errorf("%v: allowed %v, want %v", c.r, got, c.want)
		}
	}
	if !match("a*b?c", "axxxbyc") || match("a*b?c", "abc") || !match("*", "") {
		t.Error("wildcards")
	}
}
