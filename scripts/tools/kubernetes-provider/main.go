// Command pulumi-resource-kubernetes is the Kubernetes provider's own main,
// with the schema files copied next to it from the module (go:embed cannot
// reach into the module cache); build.sh does the copy.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema.json
var schema []byte

//go:embed terraform-mapping.json
var terraformMapping []byte

func main() { provider.Serve("kubernetes", version.Version, schema, terraformMapping) }
