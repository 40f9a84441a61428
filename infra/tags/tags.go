// Package tags gives every cloud resource the same ownership tags (AWS) or
// labels (GCP): which project and stack made it, and that Pulumi manages it.
package tags

import (
	"maps"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ManagedBy is the value of the managed-by tag.
const ManagedBy = "pulumi"

// Owner identifies the stack that owns resources.
type Owner struct{ Project, Stack string }

// AWS returns the tag map for an AWS resource called name.
func (o Owner) AWS(name string) pulumi.StringMap {
	m := pulumi.StringMap{
		"Name":       pulumi.String(o.Project + "-" + o.Stack + "-" + name),
		"project":    pulumi.String(o.Project),
		"stack":      pulumi.String(o.Stack),
		"managed-by": pulumi.String(ManagedBy),
	}
	return m
}

// Plain is the same set without the Name, for APIs that take map[string]string.
func (o Owner) Plain() map[string]string {
	return map[string]string{"project": o.Project, "stack": o.Stack, "managed-by": ManagedBy}
}

// GCP returns labels for a GCP resource: lower case, [a-z0-9_-] only.
func (o Owner) GCP() pulumi.StringMap {
	m := pulumi.StringMap{}
	for k, v := range o.Plain() {
		m[k] = pulumi.String(gcpLabel(v))
	}
	return m
}

// Prefix names a cloud resource: <project>-<stack>-<name>.
func (o Owner) Prefix(name string) string { return o.Project + "-" + o.Stack + "-" + name }

// Merge returns a new map with extra over base.
func Merge(base pulumi.StringMap, extra map[string]string) pulumi.StringMap {
	out := maps.Clone(base)
	for k, v := range extra {
		out[k] = pulumi.String(v)
	}
	return out
}

func gcpLabel(v string) string {
	v = strings.ToLower(v)
	b := []rune(v)
	for i, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return string(b)
}
