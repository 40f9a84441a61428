package gateway

import (
	"strings"

	apiextv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// pluginSchema is the structural schema shared by KongPlugin and
// KongClusterPlugin: the plugin's name and its free-form config are
// top-level fields (these kinds have no spec).
func pluginSchema(clusterScoped bool) *apiextv1.JSONSchemaPropsArgs {
	obj := func(desc string) apiextv1.JSONSchemaPropsArgs {
		return apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("object"), Description: pulumi.String(desc), X_kubernetes_preserve_unknown_fields: pulumi.Bool(true)}
	}
	str := func(desc string) apiextv1.JSONSchemaPropsArgs {
		return apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("string"), Description: pulumi.String(desc)}
	}
	props := apiextv1.JSONSchemaPropsMap{
		"apiVersion":    str("API version"),
		"kind":          str("kind"),
		"metadata":      apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("object")},
		"plugin":        str("name of the Kong plugin"),
		"instance_name": str("name of this plugin instance in Kong"),
		"config":        obj("the plugin's configuration"),
		"configFrom":    obj("read the configuration from a Secret"),
		"configPatches": apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("array"), Items: obj("patch"), Description: pulumi.String("patches from Secrets")},
		"disabled":      apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("boolean")},
		"protocols":     apiextv1.JSONSchemaPropsArgs{Type: pulumi.String("array"), Items: str("protocol")},
		"ordering":      obj("plugin ordering"),
		"status":        obj("controller status"),
	}
	if clusterScoped {
		props["consumerRef"] = str("consumer the plugin applies to")
	}
	return &apiextv1.JSONSchemaPropsArgs{
		Type:       pulumi.String("object"),
		Required:   pulumi.StringArray{pulumi.String("plugin")},
		Properties: props,
	}
}

// crds declares the configuration.konghq.com kinds the platform uses. The
// controller turns off its watches for Kong kinds whose CRDs are absent, so
// only these two are installed.
func (g *Gateway) crds(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	var out []pulumi.Resource
	for _, k := range []struct {
		kind, plural, short, scope string
	}{
		{"KongPlugin", "kongplugins", "kp", "Namespaced"},
		{"KongClusterPlugin", "kongclusterplugins", "kcp", "Cluster"},
	} {
		crd, err := apiextv1.NewCustomResourceDefinition(ctx, name+"-"+k.plural, &apiextv1.CustomResourceDefinitionArgs{
			Metadata: labelsOnly(k.plural+".configuration.konghq.com", g.comp.Labels()),
			Spec: apiextv1.CustomResourceDefinitionSpecArgs{
				Group: pulumi.String("configuration.konghq.com"),
				Scope: pulumi.String(k.scope),
				Names: apiextv1.CustomResourceDefinitionNamesArgs{
					Kind:       pulumi.String(k.kind),
					ListKind:   pulumi.String(k.kind + "List"),
					Plural:     pulumi.String(k.plural),
					Singular:   pulumi.String(strings.ToLower(k.kind)),
					ShortNames: pulumi.StringArray{pulumi.String(k.short)},
					Categories: pulumi.StringArray{pulumi.String("kong-ingress-controller")},
				},
				Versions: apiextv1.CustomResourceDefinitionVersionArray{apiextv1.CustomResourceDefinitionVersionArgs{
					Name:         pulumi.String("v1"),
					Served:       pulumi.Bool(true),
					Storage:      pulumi.Bool(true),
					Subresources: apiextv1.CustomResourceSubresourcesArgs{Status: pulumi.Map{}},
					Schema: apiextv1.CustomResourceValidationArgs{
						OpenAPIV3Schema: pluginSchema(k.scope == "Cluster"),
					},
					AdditionalPrinterColumns: apiextv1.CustomResourceColumnDefinitionArray{apiextv1.CustomResourceColumnDefinitionArgs{
						Name: pulumi.String("Plugin-Type"), Type: pulumi.String("string"), JsonPath: pulumi.String(".plugin"),
					}},
				}},
			},
		}, opts...)
		if err != nil {
			return nil, err
		}
		out = append(out, crd)
	}
	return out, nil
}

func labelsOnly(name string, labels pulumi.StringMap) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Name: pulumi.String(name), Labels: labels}
}
