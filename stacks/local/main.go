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

const usage = `usage: go run ./stacks/local up|preview|refresh|destroy|outputs [--kubeconfig PATH] [--stack local]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	action := os.Args[1]
	fs := flag.NewFlagSet(action, flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "cluster to deploy to")
	stack := fs.String("stack", "local", "stack (Pulumi.<stack>.yaml, target kubeconfig)")
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
	if err := run(ctx, action, Options{Root: root, Stack: *stack, Kubeconfig: abs, Out: os.Stdout}); err != nil {
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
