package gateway

import (
	"embed"
	"fmt"
	"maps"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	apiextv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// CRDSource is where the embedded CRDs come from, byte for byte: the
// module KIC v3.4.4's go.mod requires (github.com/kong/kubernetes-configuration
// v1.3.0, the same version its config/crd/kustomization.yaml installs),
// directory config/crd/ingress-controller. crds/README.md says how to
// refresh them.
const CRDSource = "github.com/kong/kubernetes-configuration@v1.3.0/config/crd/ingress-controller"

//go:embed crds/*.yaml
var crdFiles embed.FS

// CRD is one embedded upstream CustomResourceDefinition.
type CRD struct {
	File   string         // under crds/
	Object map[string]any // the parsed manifest
}

// Name is the CRD's metadata.name (<plural>.<group>).
func (c CRD) Name() string {
	m, _ := c.Object["metadata"].(map[string]any)
	s, _ := m["name"].(string)
	return s
}

// LoadCRD parses crds/<file>, refusing anything but a single
// apiextensions.k8s.io/v1 CustomResourceDefinition.
func LoadCRD(file string) (CRD, error) {
	b, err := crdFiles.ReadFile("crds/" + file)
	if err != nil {
		return CRD{}, err
	}
	var obj map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil {
		return CRD{}, fmt.Errorf("gateway: crds/%s: %w", file, err)
	}
	if obj["apiVersion"] != "apiextensions.k8s.io/v1" || obj["kind"] != "CustomResourceDefinition" {
		return CRD{}, fmt.Errorf("gateway: crds/%s is a %v %v, not an apiextensions.k8s.io/v1 CustomResourceDefinition", file, obj["apiVersion"], obj["kind"])
	}
	delete(obj, "status")
	c := CRD{File: file, Object: obj}
	if c.Name() == "" {
		return CRD{}, fmt.Errorf("gateway: crds/%s has no metadata.name", file)
	}
	return c, nil
}

// crds declares the upstream CRD of every controller that runs (see
// Controllers): exactly those, so a controller switched on without its CRD,
// or a CRD kept for a controller switched off, is visible here and in the
// tests. The manifests go to the API server as they are, with our labels
// added, the same way pulumi-kubernetes' own yaml package registers them.
func (g *Gateway) crds(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) ([]pulumi.Resource, error) {
	var out []pulumi.Resource
	for _, c := range Controllers {
		if !c.Runs() || c.CRDFile == "" {
			continue
		}
		crd, err := LoadCRD(c.CRDFile)
		if err != nil {
			return nil, err
		}
		meta := crd.Object["metadata"].(map[string]any)
		labels := map[string]any{}
		if l, ok := meta["labels"].(map[string]any); ok {
			maps.Copy(labels, l)
		}
		for k, v := range g.comp.Labels() {
			labels[k] = string(v.(pulumi.String))
		}
		meta["labels"] = labels
		// The resource names are those of the hand-written CRDs they
		// replace ("<name>-<plural>"), so an existing stack updates them
		// in place.
		plural := crd.Object["spec"].(map[string]any)["names"].(map[string]any)["plural"].(string)
		var res apiextv1.CustomResourceDefinition
		if err := ctx.RegisterResource("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition", name+"-"+plural,
			kubernetes.UntypedArgs(crd.Object), &res, opts...); err != nil {
			return nil, err
		}
		out = append(out, &res)
	}
	return out, nil
}
