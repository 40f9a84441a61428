// Command backend bootstraps the platform's state backend: the S3 bucket,
// the DynamoDB deploy-lock table, the secrets key and the CI roles (see
// infra/backend). Run it once per account with `make backend`.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"microk8s-platform/infra/backend"
)

func main() { pulumi.Run(backend.Run) }
