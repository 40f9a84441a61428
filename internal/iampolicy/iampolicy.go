// Package iampolicy is IAM policy documents, typed so programs can build
// them and tests can read them back, and an evaluator small enough to read:
// action and resource matching with IAM's wildcards, explicit deny over
// allow, and the condition operators the platform's policies use, with
// IAM's rules for missing and multi-valued keys (IAM User Guide, "Policy
// evaluation logic", "IAM JSON policy elements: Condition operators",
// "Set operators for multivalued context keys": a missing key fails
// StringEquals/StringLike, passes the negated operators and passes
// ForAllValues).
//
// It is not AWS's evaluator: it knows identity policies only (no
// permission boundaries, SCPs or resource policies) and refuses, with an
// error, any operator it does not implement rather than guess.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Document is an IAM policy.
type Document struct {
	Version   string
	Statement []Statement
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                    `json:",omitempty"`
	Effect    string                    `json:"Effect"`
	Principal map[string]any            `json:",omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:",omitempty"`
	Condition map[string]map[string]any `json:",omitempty"`
}

// JSON renders the document.
func (d Document) JSON() string {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // only strings and maps: cannot fail
	}
	return string(b)
}

// Request is one authorisation request as IAM sees it: an action on one
// resource with the condition keys present in the request. An API call
// that touches several resources is one Request per resource, and
// succeeds only when every one is allowed.
type Request struct {
	Action   string
	Resource string
	Ctx      map[string][]string
}

func (r Request) String() string {
	return fmt.Sprintf("%s on %s %v", r.Action, r.Resource, r.Ctx)
}

// Allowed evaluates d for r: an explicit deny wins, then any allow.
func Allowed(d Document, r Request) (bool, error) {
	allow := false
	for _, s := range d.Statement {
		ok, err := applies(s, r)
		if err != nil {
			return false, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		if !ok {
			continue
		}
		if s.Effect == "Deny" {
			return false, nil
		}
		allow = true
	}
	return allow, nil
}

// Allowing returns the Sids of the allow statements that apply to r.
func Allowing(d Document, r Request) ([]string, error) {
	var out []string
	for _, s := range d.Statement {
		ok, err := applies(s, r)
		if err != nil {
			return nil, fmt.Errorf("statement %q: %w", s.Sid, err)
		}
		if s.Effect == "Allow" && ok {
			out = append(out, s.Sid)
		}
	}
	return out, nil
}

func applies(s Statement, r Request) (bool, error) {
	if !slices.ContainsFunc(s.Action, func(a string) bool { return MatchFold(a, r.Action) }) {
		return false, nil
	}
	if len(s.Resource) > 0 && !slices.ContainsFunc(s.Resource, func(p string) bool { return Match(p, r.Resource) }) {
		return false, nil
	}
	for op, kv := range s.Condition {
		for key, want := range kv {
			ok, err := condition(op, values(want), lookup(r.Ctx, key), key)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// lookup finds a condition key's values; key names are case-insensitive.
func lookup(ctx map[string][]string, key string) []string {
	if v, ok := ctx[key]; ok {
		return v
	}
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
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

// condition evaluates one operator for one key. Values are compared
// case-sensitively (StringEquals) or with * and ? (StringLike).
func condition(op string, want, got []string, key string) (bool, error) {
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
		one = Match
	case "StringNotEquals":
		one, negated = func(w, g string) bool { return w == g }, true
	case "StringNotLike":
		one, negated = Match, true
	case "Bool":
		one = strings.EqualFold
	default:
		return false, fmt.Errorf("condition operator %s on %s: the evaluator does not know it", op, key)
	}
	matchesAny := func(g string) bool { return slices.ContainsFunc(want, func(w string) bool { return one(w, g) }) }
	if len(got) == 0 {
		// Missing key: ForAllValues is vacuously true, negated operators
		// true, ...IfExists true, everything else false.
		return set == "ForAllValues" || negated || ifExists, nil
	}
	switch set {
	case "ForAllValues":
		for _, g := range got {
			if matchesAny(g) == negated {
				return false, nil
			}
		}
		return true, nil
	case "ForAnyValue":
		for _, g := range got {
			if matchesAny(g) != negated {
				return true, nil
			}
		}
		return false, nil
	case "":
		if len(got) > 1 {
			return false, fmt.Errorf("single-valued operator %s on multivalued key %s=%v", op, key, got)
		}
		return matchesAny(got[0]) != negated, nil
	}
	return false, fmt.Errorf("set operator %s unknown", set)
}

// Match is IAM's wildcard matching: * any run of characters, ? one.
func Match(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if Match(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && Match(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && Match(pattern[1:], s[1:])
}

// MatchFold matches action names, which are case-insensitive (IAM JSON
// policy elements: Action).
func MatchFold(pattern, s string) bool { return Match(strings.ToLower(pattern), strings.ToLower(s)) }
