// Command stackcheck tells, before any cloud call, what a stack file still
// lacks for `pulumi preview` and `pulumi up` to run unattended in CI:
//
//	stackcheck --stack dev [--dir .]
//
// It reads Pulumi.yaml and Pulumi.<stack>.yaml and checks that
//
//   - the stack has a KMS secrets provider (secretsprovider: awskms://...)
//     naming that stack's own key alias (alias/<project>-secrets-<stack>,
//     the one key its CI role may decrypt; see infra/backend) and the
//     encrypted data key Pulumi keeps next to it (encryptedkey). Both are
//     written by `pulumi stack init --secrets-provider ...`; without them a
//     CI run would ask for a passphrase;
//   - the keys the program requires for the stack's target are set:
//     adminCidrs (aws, gcp), sshPublicKey (aws, gcp), sshPrivateKey (every
//     target but kubeconfig), dbPassword, an alert receiver (alertEmails or
//     alertWebhookUrl) when observability runs on a MicroK8s of ours, and
//     with alertSmtpHost and alertSmtpFrom for e-mail, and the target's own
//     location keys (aws:region, gcp:project, sshHost);
//   - secrets are ciphertext (secure: values), never plain text.
//
// It exits 1 naming every missing key and the command that sets it, 0 when
// the stack is complete, 2 on usage errors. infra.Config.Validate checks the
// values themselves when the program runs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stackcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stack := fs.String("stack", "", "stack to check (dev, prod, ...)")
	dir := fs.String("dir", ".", "folder holding Pulumi.yaml and the stack files")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *stack == "" {
		fmt.Fprintln(stderr, "usage: stackcheck --stack STACK [--dir DIR]")
		return 2
	}
	problems, err := Check(*dir, *stack)
	if err != nil {
		fmt.Fprintf(stderr, "stackcheck: %v\n", err)
		return 2
	}
	if len(problems) == 0 {
		fmt.Fprintf(stdout, "stack %s: secrets provider, encrypted key and every required key are set\n", *stack)
		return 0
	}
	fmt.Fprintf(stdout, "stack %s is not ready for CI; Pulumi.%s.yaml lacks:\n", *stack, *stack)
	for _, p := range problems {
		fmt.Fprintf(stdout, "  - %s: %s\n", p.Key, p.Fix)
	}
	fmt.Fprintln(stdout, "Set them once, then commit Pulumi."+*stack+".yaml (secrets are ciphertext; see README \"Deploy to AWS\").")
	return 1
}

// Problem is one missing or unusable key.
type Problem struct {
	Key string // secretsprovider, encryptedkey, or a config key without the project prefix
	Fix string // what to run
}

type stackFile struct {
	SecretsProvider string         `yaml:"secretsprovider"`
	EncryptedKey    string         `yaml:"encryptedkey"`
	Config          map[string]any `yaml:"config"`
}

// SecretsAlias is the KMS alias of a stack's secrets key (infra/backend
// SecretsAlias; repeated here so this check builds without the Pulumi SDK,
// and pinned equal by the test).
func SecretsAlias(project, stack string) string { return "alias/" + project + "-secrets-" + stack }

// Check returns what the stack file lacks.
func Check(dir, stack string) ([]Problem, error) {
	var proj struct {
		Name string `yaml:"name"`
	}
	if err := readYAML(filepath.Join(dir, "Pulumi.yaml"), &proj); err != nil {
		return nil, err
	}
	if proj.Name == "" {
		return nil, errors.New("no project name in Pulumi.yaml")
	}
	var sf stackFile
	if err := readYAML(filepath.Join(dir, "Pulumi."+stack+".yaml"), &sf); err != nil {
		return nil, err
	}
	alias := SecretsAlias(proj.Name, stack)
	var out []Problem
	add := func(key, fix string) { out = append(out, Problem{key, fix}) }
	init := fmt.Sprintf("pulumi stack init %s --secrets-provider \"awskms://%s?region=<region>\" (the bootstrap's secretsProviders output)", stack, alias)
	switch {
	case sf.SecretsProvider == "":
		add("secretsprovider", init)
	case !strings.HasPrefix(sf.SecretsProvider, "awskms://"):
		add("secretsprovider", fmt.Sprintf("is %q: CI has no passphrase; pulumi stack change-secrets-provider --stack %s \"awskms://%s?region=<region>\"", sf.SecretsProvider, stack, alias))
	case !strings.HasPrefix(sf.SecretsProvider, "awskms://"+alias+"?") && sf.SecretsProvider != "awskms://"+alias:
		add("secretsprovider", fmt.Sprintf("is %q, not this stack's key %s, which is the only one its CI roles may decrypt; pulumi stack change-secrets-provider --stack %s \"awskms://%s?region=<region>\"", sf.SecretsProvider, alias, stack, alias))
	}
	if sf.SecretsProvider != "" && sf.EncryptedKey == "" {
		add("encryptedkey", "written with the secrets provider by pulumi stack init / change-secrets-provider; commit the file it wrote")
	}

	cfg := map[string]any{}
	for k, v := range sf.Config {
		k = strings.TrimPrefix(k, proj.Name+":")
		cfg[k] = v
	}
	set := func(k string) bool { v, ok := cfg[k]; return ok && v != nil && v != "" }
	secure := func(k string) bool {
		m, ok := cfg[k].(map[string]any)
		s, _ := m["secure"].(string)
		return ok && s != ""
	}
	needSecret := func(k, fix string) {
		switch {
		case !set(k):
			add(k, fix)
		case !secure(k):
			add(k, "is plain text in the stack file; set it again with --secret: "+fix)
		}
	}
	target, _ := cfg["target"].(string)
	switch target {
	case "aws", "gcp", "ssh", "kubeconfig":
	case "":
		add("target", fmt.Sprintf("pulumi config set --stack %s target aws", stack))
		return out, nil
	default:
		add("target", fmt.Sprintf("is %q; want aws, gcp, ssh or kubeconfig", target))
		return out, nil
	}
	switch target {
	case "aws":
		if !set("aws:region") {
			add("aws:region", fmt.Sprintf("pulumi config set --stack %s aws:region us-east-1", stack))
		}
	case "gcp":
		if !set("gcp:project") {
			add("gcp:project", fmt.Sprintf("pulumi config set --stack %s gcp:project <project id>", stack))
		}
	case "ssh":
		if !set("sshHost") {
			add("sshHost", fmt.Sprintf("pulumi config set --stack %s sshHost <address>", stack))
		}
	}
	if target == "aws" || target == "gcp" {
		if !set("adminCidrs") {
			add("adminCidrs", fmt.Sprintf("pulumi config set --stack %s --path 'adminCidrs[0]' \"$(curl -s https://checkip.amazonaws.com)/32\"", stack))
		}
		if !set("sshPublicKey") {
			add("sshPublicKey", fmt.Sprintf("pulumi config set --stack %s sshPublicKey \"$(cat ~/.ssh/id_ed25519.pub)\"", stack))
		}
	}
	if target != "kubeconfig" {
		needSecret("sshPrivateKey", fmt.Sprintf("pulumi config set --stack %s --secret sshPrivateKey < ~/.ssh/id_ed25519", stack))
		if obs, ok := cfg["observability"]; !ok || fmt.Sprint(obs) != "false" {
			if !set("alertEmails") && !set("alertWebhookUrl") {
				add("alertEmails", fmt.Sprintf("an alert receiver: pulumi config set --stack %s --path 'alertEmails[0]' you@example.com (with alertSmtpHost and alertSmtpFrom), or --secret alertWebhookUrl", stack))
			}
			if set("alertEmails") {
				for _, k := range []string{"alertSmtpHost", "alertSmtpFrom"} {
					if !set(k) {
						add(k, fmt.Sprintf("alertEmails needs the mail relay: pulumi config set --stack %s %s ...", stack, k))
					}
				}
			}
			if set("alertWebhookUrl") && !secure("alertWebhookUrl") {
				add("alertWebhookUrl", fmt.Sprintf("is plain text in the stack file; set it again with: pulumi config set --stack %s --secret alertWebhookUrl https://...", stack))
			}
		}
	}
	needSecret("dbPassword", fmt.Sprintf("pulumi config set --stack %s --secret dbPassword \"$(openssl rand -base64 24)\"", stack))
	return out, nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
