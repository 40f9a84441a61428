package gateway

import (
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ClusterRules are what the ingress controller may do cluster-wide: read the
// objects it translates into Kong configuration, write their status, and
// record events. Nothing else — in particular no write to Secrets or
// workloads.
var ClusterRules = []Rule{
	{[]string{""}, []string{"services", "endpoints", "secrets", "pods"}, []string{"get", "list", "watch"}},
	{[]string{""}, []string{"services/status"}, []string{"get", "patch", "update"}},
	{[]string{""}, []string{"events"}, []string{"create", "patch"}},
	{[]string{"discovery.k8s.io"}, []string{"endpointslices"}, []string{"get", "list", "watch"}},
	{[]string{"networking.k8s.io"}, []string{"ingresses", "ingressclasses"}, []string{"get", "list", "watch"}},
	{[]string{"networking.k8s.io"}, []string{"ingresses/status"}, []string{"get", "patch", "update"}},
	{[]string{"configuration.konghq.com"}, []string{"kongplugins", "kongclusterplugins"}, []string{"get", "list", "watch"}},
	{[]string{"configuration.konghq.com"}, []string{"kongplugins/status", "kongclusterplugins/status"}, []string{"get", "patch", "update"}},
	// To find out which Kong CRDs are installed and turn the rest off.
	{[]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, []string{"list", "watch"}},
}

// NamespaceRules are what it may do in its own namespace: leader election.
var NamespaceRules = []Rule{
	{[]string{"coordination.k8s.io"}, []string{"leases"}, []string{"get", "list", "watch", "create", "update", "patch"}},
	{[]string{""}, []string{"configmaps"}, []string{"get", "list", "watch"}},
}

// Rule is one RBAC policy rule.
type Rule struct{ Groups, Resources, Verbs []string }

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

func (g *Gateway) rbac(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) error {
	c := g.comp
	subject := rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String("kong"), Namespace: pulumi.String(Namespace)}}
	cr, err := rbacv1.NewClusterRole(ctx, name, &rbacv1.ClusterRoleArgs{Metadata: c.Meta("kong-ingress-controller", ""), Rules: rules(ClusterRules)}, opts...)
	if err != nil {
		return err
	}
	if _, err := rbacv1.NewClusterRoleBinding(ctx, name, &rbacv1.ClusterRoleBindingArgs{
		Metadata: c.Meta("kong-ingress-controller", ""),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: cr.Metadata.Name().Elem()},
		Subjects: subject,
	}, opts...); err != nil {
		return err
	}
	role, err := rbacv1.NewRole(ctx, name, &rbacv1.RoleArgs{Metadata: c.Meta("kong-leader-election", Namespace), Rules: rules(NamespaceRules)}, opts...)
	if err != nil {
		return err
	}
	_, err = rbacv1.NewRoleBinding(ctx, name, &rbacv1.RoleBindingArgs{
		Metadata: c.Meta("kong-leader-election", Namespace),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: role.Metadata.Name().Elem()},
		Subjects: subject,
	}, opts...)
	return err
}
