package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"gopkg.in/yaml.v3"

	"microk8s-platform/infra"
	"microk8s-platform/internal/repo"
)

// Versions of the tools scripts/tools/build.sh builds.
const (
	project            = repo.Project
	kubernetesProvider = "4.32.0"
)

// Options say where things are.
type Options struct {
	Root       string // repository root (Pulumi.<stack>.yaml lives here)
	Stack      string // default "local"
	Kubeconfig string // the cluster to deploy to
	BackendDir string // file backend; default <root>/.pulumi-local
	ToolsBin   string // pulumi and the provider; default <root>/.tools/bin, else PATH
	// Set overrides stack config values (key without the project prefix).
	Set map[string]string
	// ServeRegistry, a 127.0.0.1 address, serves an in-process registry
	// there and points imageRepository at it (the sandbox).
	ServeRegistry string
	// Out receives the engine's progress; nil discards it.
	Out io.Writer
}

func (o *Options) defaults() {
	if o.Stack == "" {
		o.Stack = "local"
	}
	if o.BackendDir == "" {
		o.BackendDir = filepath.Join(o.Root, ".pulumi-local")
	}
	if o.ToolsBin == "" {
		o.ToolsBin = filepath.Join(o.Root, ".tools", "bin")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// pulumiCommand is the CLI from ToolsBin when built there, else from PATH
// (a normal Pulumi install).
func (o *Options) pulumiCommand() (auto.PulumiCommand, string, error) {
	if _, err := os.Stat(filepath.Join(o.ToolsBin, "pulumi")); err == nil {
		cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(o.ToolsBin), SkipVersionCheck: true})
		return cmd, filepath.Join(o.ToolsBin, "pulumi"), err
	}
	path, err := exec.LookPath("pulumi")
	if err != nil {
		return nil, "", fmt.Errorf("no pulumi CLI: build it with `make tools` or install Pulumi")
	}
	cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(filepath.Dir(path)), SkipVersionCheck: true})
	return cmd, path, err
}

// env is the engine's environment: the file backend and a passphrase for
// the local stack's secrets. The provider comes from the plugin cache
// (installProvider), not PATH, so no "from $PATH" warning.
func (o *Options) env() map[string]string {
	pass := os.Getenv("PULUMI_CONFIG_PASSPHRASE")
	if pass == "" {
		pass = "microk8s-platform-local" // a local stack on a throwaway cluster
	}
	return map[string]string{
		"PULUMI_BACKEND_URL":       "file://" + o.BackendDir,
		"PULUMI_CONFIG_PASSPHRASE": pass,
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		// Use the installed plugin, not a binary that sits beside the CLI.
		"PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
	}
}

// installProvider registers the locally built Kubernetes provider as
// plugin version kubernetesProvider, once.
func (o *Options) installProvider(ctx context.Context, cli string) error {
	provider := filepath.Join(o.ToolsBin, "pulumi-resource-kubernetes")
	if _, err := os.Stat(provider); err != nil {
		return nil // a normal install downloads it
	}
	out, err := exec.CommandContext(ctx, cli, "plugin", "ls").Output()
	if err == nil && strings.Contains(string(out), "kubernetes") && strings.Contains(string(out), kubernetesProvider) {
		return nil
	}
	fmt.Fprintf(o.Out, "installing the kubernetes provider %s from %s\n", kubernetesProvider, provider)
	c := exec.CommandContext(ctx, cli, "plugin", "install", "resource", "kubernetes", kubernetesProvider, "--file", provider)
	c.Env = os.Environ()
	for k, v := range o.env() {
		c.Env = append(c.Env, k+"="+v)
	}
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("pulumi plugin install: %v\n%s", err, b)
	}
	return nil
}

// Stack selects or creates the stack with its committed configuration.
func Stack(ctx context.Context, o Options) (auto.Stack, error) {
	o.defaults()
	if o.ServeRegistry != "" {
		repo, err := serveRegistry(o.ServeRegistry)
		if err != nil {
			return auto.Stack{}, err
		}
		set := map[string]string{"imageRepository": repo}
		for k, v := range o.Set {
			set[k] = v
		}
		o.Set = set
	}
	if err := os.MkdirAll(o.BackendDir, 0o755); err != nil {
		return auto.Stack{}, err
	}
	cmd, cli, err := o.pulumiCommand()
	if err != nil {
		return auto.Stack{}, err
	}
	if err := o.installProvider(ctx, cli); err != nil {
		return auto.Stack{}, err
	}
	proj := workspace.Project{
		Name:    tokens.PackageName(project),
		Runtime: workspace.NewProjectRuntimeInfo("go", nil),
		Backend: &workspace.ProjectBackend{URL: "file://" + o.BackendDir},
	}
	// A kept work dir: the stack's settings file (with its generated,
	// encrypted dbPassword) must outlive the run, or every run would
	// generate a new password and replace the database's Secret.
	workDir := filepath.Join(o.BackendDir, "workspace")
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return auto.Stack{}, err
	}
	st, err := auto.UpsertStackInlineSource(ctx, o.Stack, project, infra.Run, // the program stacks/platform runs
		auto.Pulumi(cmd), auto.Project(proj), auto.EnvVars(o.env()), auto.WorkDir(workDir))
	if err != nil {
		return auto.Stack{}, fmt.Errorf("stack %s: %w", o.Stack, err)
	}
	if err := configure(ctx, st, o); err != nil {
		return auto.Stack{}, err
	}
	return st, nil
}

// configure applies Pulumi.<stack>.yaml, the kubeconfig, overrides, and a
// database password generated once and kept (as a secret) in the stack.
func configure(ctx context.Context, st auto.Stack, o Options) error {
	b, err := os.ReadFile(filepath.Join(o.Root, "Pulumi."+o.Stack+".yaml"))
	if err != nil {
		return err
	}
	var doc struct {
		Config map[string]string `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("stack file Pulumi.%s.yaml: %w", o.Stack, err)
	}
	cfg := auto.ConfigMap{}
	for k, v := range doc.Config {
		cfg[k] = auto.ConfigValue{Value: v}
	}
	if o.Kubeconfig != "" {
		cfg[project+":kubeconfig"] = auto.ConfigValue{Value: o.Kubeconfig}
	}
	for k, v := range o.Set {
		cfg[project+":"+k] = auto.ConfigValue{Value: v}
	}
	if err := st.SetAllConfig(ctx, cfg); err != nil {
		return err
	}
	if _, err := st.GetConfig(ctx, project+":dbPassword"); err != nil {
		pw := make([]byte, 24)
		_, _ = rand.Read(pw)
		if err := st.SetConfig(ctx, project+":dbPassword", auto.ConfigValue{Value: base64.RawURLEncoding.EncodeToString(pw), Secret: true}); err != nil {
			return err
		}
	}
	return nil
}
