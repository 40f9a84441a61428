// Command platform is the Pulumi program (Pulumi.yaml's main). Everything
// lives in package infra so that tests and the local sandbox run the same code.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra"
)

func main() { pulumi.Run(infra.Run) }
