package iampolicy

import "testing"

func TestEvaluatorFollowsIAMRules(t *testing.T) {
	doc := Document{Statement: []Statement{
		{Sid: "A", Effect: "Allow", Action: []string{"ec2:Describe*"}, Resource: []string{"*"}},
		{Sid: "B", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{"arn:aws:ec2:r:1:vpc/*"},
			Condition: map[string]map[string]any{"StringEquals": {"aws:RequestTag/stack": "dev", "ec2:CreateAction": []string{"CreateVpc", "RunInstances"}}}},
		{Sid: "C", Effect: "Allow", Action: []string{"ec2:DeleteTags"}, Resource: []string{"arn:aws:ec2:r:1:vpc/*"},
			Condition: map[string]map[string]any{"ForAllValues:StringNotEquals": {"aws:TagKeys": []string{"stack"}}}},
		{Sid: "D", Effect: "Deny", Action: []string{"ec2:DescribeVpcs"}, Resource: []string{"*"}},
	}}
	vpc := "arn:aws:ec2:r:1:vpc/vpc-1"
	for _, c := range []struct {
		r    Request
		want bool
	}{
		{Request{"ec2:DescribeSubnets", "*", nil}, true},
		{Request{"EC2:describesubnets", "*", nil}, true},
		{Request{"ec2:DescribeVpcs", "*", nil}, false}, // explicit deny
		{Request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"dev"}, "ec2:CreateAction": {"CreateVpc"}}}, true},
		{Request{"ec2:CreateTags", vpc, map[string][]string{"AWS:RequestTag/stack": {"dev"}, "ec2:createaction": {"CreateVpc"}}}, true}, // key names ignore case
		{Request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"prod"}, "ec2:CreateAction": {"CreateVpc"}}}, false},
		{Request{"ec2:CreateTags", vpc, map[string][]string{"aws:RequestTag/stack": {"dev"}}}, false}, // no create action: not at creation
		{Request{"ec2:CreateTags", "arn:aws:ec2:r:1:subnet/s", map[string][]string{"aws:RequestTag/stack": {"dev"}, "ec2:CreateAction": {"CreateVpc"}}}, false},
		{Request{"ec2:DeleteTags", vpc, map[string][]string{"aws:TagKeys": {"Name"}}}, true},
		{Request{"ec2:DeleteTags", vpc, map[string][]string{"aws:TagKeys": {"Name", "stack"}}}, false},
		{Request{"ec2:DeleteTags", vpc, nil}, true}, // ForAllValues with no key
	} {
		got, err := Allowed(doc, c.r)
		if err != nil || got != c.want {
			t.Errorf("%v: allowed %v (%v), want %v", c.r, got, err, c.want)
		}
	}
	if !Match("a*b?c", "axxxbyc") || Match("a*b?c", "abc") || !Match("*", "") {
		t.Error("wildcards")
	}
}

// An operator the evaluator does not implement is an error, never a guess.
func TestUnknownOperatorIsAnError(t *testing.T) {
	doc := Document{Statement: []Statement{{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{"*"},
		Condition: map[string]map[string]any{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}}}
	if _, err := Allowed(doc, Request{"s3:GetObject", "arn:aws:s3:::b/k", map[string][]string{"aws:SourceIp": {"10.1.1.1"}}}); err == nil {
		t.Error("IpAddress evaluated without an error")
	}
	multi := Document{Statement: []Statement{{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{"*"},
		Condition: map[string]map[string]any{"StringEquals": {"aws:TagKeys": "a"}}}}}
	if _, err := Allowed(multi, Request{"s3:GetObject", "x", map[string][]string{"aws:TagKeys": {"a", "b"}}}); err == nil {
		t.Error("a single-valued operator on a multivalued key evaluated without an error")
	}
}
