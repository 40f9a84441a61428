// Command local runs the platform's Kubernetes layer for real on an
// existing cluster (target kubeconfig, stack "local") with the Pulumi
// engine driven through the Automation API and the program inline — the
// same infra.Platform that `pulumi up --stack local` runs with a normal
// Pulumi install. State is a file backend in .pulumi-local/.
//
//	go run ./stacks/local up|preview|refresh|destroy|outputs [--kubeconfig PATH]
//
// `make local` starts the offline sandbox cluster first when no
// kubeconfig is given.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"microk8s-platform/internal/repo"
)

const usage = `usage: go run ./stacks/local up|preview|refresh|destroy|outputs [--kubeconfig PATH] [--stack local]
       [--serve-registry 127.0.0.1:PORT | --image-repository REGISTRY/REPO]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	action := os.Args[1]
	fs := flag.NewFlagSet(action, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "cluster to deploy to")
	stack := fs.String("stack", "local", "stack (Pulumi.<stack>.yaml, target kubeconfig)")
	serve := fs.String("serve-registry", "", "serve a registry on this 127.0.0.1 address and push the service's image there (the sandbox)")
	imageRepo := fs.String("image-repository", "", "push the service's image to this repository, which the cluster pulls from (your own cluster)")
	_ = fs.Parse(os.Args[2:])
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "local: no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run `make local` (starts the sandbox)")
		os.Exit(2)
	}
	root, err := repo.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
	abs, _ := filepath.Abs(*kubeconfig)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := Options{Root: root, Stack: *stack, Kubeconfig: abs, Out: os.Stdout, ServeRegistry: *serve}
	if *imageRepo != "" {
		o.Set = map[string]string{"imageRepository": *imageRepo}
	}
	if err := run(ctx, action, o); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, action string, o Options) error {
	start := time.Now()
	st, err := Stack(ctx, o)
	if err != nil {
		return err
	}
	out := optup.ProgressStreams(o.Out)
	switch action {
	case "up":
		// Refresh first: a sandbox that was torn down and started again is
		// empty while the state still lists every object; refreshing finds
		// them gone and the up recreates them.
		res, err := st.Up(ctx, out, optup.ErrorProgressStreams(os.Stderr), optup.Refresh())
		if err != nil {
			return err
		}
		printOutputs(res.Outputs)
		if o.ServeRegistry != "" {
			fmt.Print(sandboxNote(o.ServeRegistry))
		}
	case "preview":
		res, err := st.Preview(ctx, optpreview.ProgressStreams(o.Out), optpreview.Diff())
		if err != nil {
			return err
		}
		fmt.Printf("changes: %v\n", res.ChangeSummary)
	case "refresh":
		if _, err := st.Refresh(ctx, optrefresh.ProgressStreams(o.Out)); err != nil {
			return err
		}
	case "destroy":
		if _, err := st.Destroy(ctx, optdestroy.ProgressStreams(o.Out)); err != nil {
			return err
		}
	case "outputs":
		outs, err := st.Outputs(ctx)
		if err != nil {
			return err
		}
		printOutputs(outs)
	default:
		return fmt.Errorf("unknown action %q\n%s", action, usage)
	}
	fmt.Printf("%s of stack %s took %s\n", action, o.Stack, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func printOutputs(outs auto.OutputMap) {
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println("outputs:")
	for _, k := range keys {
		v := outs[k]
		if v.Secret {
			fmt.Printf("  %-24s [secret]\n", k)
			continue
		}
		fmt.Printf("  %-24s %v\n", k, v.Value)
	}
}

// sandboxNote says what a sandbox up did and did not prove, and how to
// reach the service on a cluster that runs containers.
func sandboxNote(registry string) string {
	return `
what ran: the real Pulumi engine and Kubernetes provider against a real API
  server, etcd, controller-manager and scheduler on 127.0.0.1. Every object
  above exists there, accepted by RBAC, admission and the CRD schemas.
what did not: the pods are simulated by kwok. No container runs and no image
  is pulled, so nothing answers at appUrl. The service's image was built from
  service/ (appImageDigest) and pushed to the registry this command served on
  ` + registry + ` while it ran.
to reach the service, deploy it where containers run:
  - your own cluster (kind, k3d, MicroK8s): make local CLUSTER_KUBECONFIG=~/.kube/config \
      IMAGE_REPOSITORY=<a registry it pulls from, e.g. ghcr.io/you/comments>
    then kubectl -n kong port-forward svc/kong-proxy 8080:80 and
    curl http://localhost:8080/api/comment
  - a VM of your own: make up STACK=dev (README "Deploy to AWS"), then
    scripts/smoke.sh "$(pulumi stack output appUrl)"
`
}
