package gateway

import (
	"slices"
	"sort"
	"strings"

	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ClusterRules are all the ingress controller may do, cluster-wide (it
// watches every namespace): the grants of the controllers that run
// (Controllers) and ManagerRules, merged, and nothing else — no write to
// Secrets or workloads, no Role in its own namespace (3.x keeps no lock
// there in DB-less mode; the ConfigMap lock and the Endpoints, Pods and
// CRD reads of 1.x/2.x and of the switched-off controllers are gone).
var ClusterRules = clusterRules()

// Rule is one RBAC policy rule.
type Rule struct{ Groups, Resources, Verbs []string }

func clusterRules() []Rule {
	// group -> resource -> verbs
	grants := map[string]map[string][]string{}
	add := func(rs []Rule) {
		for _, r := range rs {
			for _, g := range r.Groups {
				if grants[g] == nil {
					grants[g] = map[string][]string{}
				}
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						if !slices.Contains(grants[g][res], v) {
							grants[g][res] = append(grants[g][res], v)
						}
					}
				}
			}
		}
	}
	add(ManagerRules)
	for _, c := range Controllers {
		if c.Runs() {
			add(c.Rules)
		}
	}
	// One rule per group and verb set, resources sorted: a stable order,
	// so previews do not show reshuffles.
	type key struct{ group, verbs string }
	merged := map[key][]string{}
	for g, rs := range grants {
		for res, verbs := range rs {
			slices.Sort(verbs)
			k := key{g, strings.Join(verbs, ",")}
			merged[k] = append(merged[k], res)
		}
	}
	var out []Rule
	for k, rs := range merged {
		sort.Strings(rs)
		out = append(out, Rule{[]string{k.group}, rs, strings.Split(k.verbs, ",")})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Groups[0] != b.Groups[0] {
			return a.Groups[0] < b.Groups[0]
		}
		return a.Resources[0] < b.Resources[0]
	})
	return out
}

func rules(rs []Rule) rbacv1.PolicyRuleArray {
	var out rbacv1.PolicyRuleArray
	for _, r := range rs {
		out = append(out, rbacv1.PolicyRuleArgs{
			ApiGroups: pulumi.ToStringArray(r.Groups),
			Resources: pulumi.ToStringArray(r.Resources),
			Verbs:     pulumi.ToStringArray(r.Verbs),
		})
	}
	return out
}

// rbac binds ClusterRules to Kong's ServiceAccount and returns the objects
// the Deployment must wait for: a controller that starts before its grants
// exist fails its first list and its cache never syncs.
func (g *Gateway) rbac(ctx *pulumi.Context, name string, sa pulumi.StringInput, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	c := g.comp
	cr, err := rbacv1.NewClusterRole(ctx, name, &rbacv1.ClusterRoleArgs{Metadata: c.Meta("kong-ingress-controller", ""), Rules: rules(ClusterRules)}, opts...)
	if err != nil {
		return nil, err
	}
	crb, err := rbacv1.NewClusterRoleBinding(ctx, name, &rbacv1.ClusterRoleBindingArgs{
		Metadata: c.Meta("kong-ingress-controller", ""),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: cr.Metadata.Name().Elem()},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: sa, Namespace: pulumi.String(Namespace)}},
	}, opts...)
	if err != nil {
		return nil, err
	}
	return []pulumi.Resource{cr, crb}, nil
}
