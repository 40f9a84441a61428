package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"microk8s-platform/internal/repo"
)

func keys(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Key)
	}
	return out
}

func dir(t *testing.T, stackFile string) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "Pulumi.yaml"), []byte("name: microk8s-platform\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "Pulumi.dev.yaml"), []byte(stackFile), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

const complete = `secretsprovider: awskms://alias/microk8s-platform-secrets-dev?region=us-east-1
encryptedkey: AQICAHh4bm90YXJlYWxrZXk=
config:
  aws:region: us-east-1
  microk8s-platform:target: aws
  microk8s-platform:adminCidrs:
    - 203.0.113.7/32
  microk8s-platform:sshPublicKey: ssh-ed25519 AAAAC3Nza ops@example.com
  microk8s-platform:sshPrivateKey:
    secure: v1:abc:def
  microk8s-platform:dbPassword:
    secure: v1:ghi:jkl
  microk8s-platform:alertEmails:
    - ops@example.com
  microk8s-platform:alertSmtpHost: email-smtp.us-east-1.amazonaws.com:587
  microk8s-platform:alertSmtpFrom: alerts@example.com
`

func TestCompleteStackPasses(t *testing.T) {
	ps, err := Check(dir(t, complete), "dev")
	if err != nil || len(ps) != 0 {
		t.Fatalf("complete stack: %v %v", ps, err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"--stack", "dev", "--dir", dir(t, complete)}, &out, &errb); code != 0 {
		t.Errorf("exit %d: %s%s", code, out.String(), errb.String())
	}
}

// Each required key, removed alone, is named, and the run fails.
func TestEachMissingKeyIsNamed(t *testing.T) {
	for key, drop := range map[string]*regexp.Regexp{
		"secretsprovider": regexp.MustCompile(`(?m)^secretsprovider:.*\n`),
		"encryptedkey":    regexp.MustCompile(`(?m)^encryptedkey:.*\n`),
		"adminCidrs":      regexp.MustCompile(`(?m)^  microk8s-platform:adminCidrs:\n    - .*\n`),
		"sshPublicKey":    regexp.MustCompile(`(?m)^  microk8s-platform:sshPublicKey:.*\n`),
		"sshPrivateKey":   regexp.MustCompile(`(?m)^  microk8s-platform:sshPrivateKey:\n    secure: .*\n`),
		"dbPassword":      regexp.MustCompile(`(?m)^  microk8s-platform:dbPassword:\n    secure: .*\n`),
		"alertEmails":     regexp.MustCompile(`(?m)^  microk8s-platform:alertEmails:\n    - .*\n  microk8s-platform:alertSmtpHost: .*\n  microk8s-platform:alertSmtpFrom: .*\n`),
		"alertSmtpHost":   regexp.MustCompile(`(?m)^  microk8s-platform:alertSmtpHost:.*\n`),
		"aws:region":      regexp.MustCompile(`(?m)^  aws:region:.*\n`),
	} {
		f := drop.ReplaceAllString(complete, "")
		if f == complete {
			t.Fatalf("%s: fixture pattern matched nothing", key)
		}
		ps, err := Check(dir(t, f), "dev")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys(ps), []string{key}) {
			t.Errorf("without %s: problems %v", key, keys(ps))
		}
		var out, errb bytes.Buffer
		if code := run([]string{"--stack", "dev", "--dir", dir(t, f)}, &out, &errb); code != 1 || !strings.Contains(out.String(), "- "+key+":") {
			t.Errorf("without %s: exit %d, output %q", key, code, out.String())
		}
	}
}

func TestPlainTextSecretsAndForeignKeysAreRefused(t *testing.T) {
	f := strings.Replace(complete, "  microk8s-platform:dbPassword:\n    secure: v1:ghi:jkl\n", "  microk8s-platform:dbPassword: hunter2\n", 1)
	ps, _ := Check(dir(t, f), "dev")
	if !slices.Equal(keys(ps), []string{"dbPassword"}) || !strings.Contains(ps[0].Fix, "plain text") {
		t.Errorf("plain-text dbPassword: %v", ps)
	}
	// prod's key: the dev roles may not decrypt it, so CI would fail later.
	f = strings.Replace(complete, "secrets-dev", "secrets-prod", 1)
	ps, _ = Check(dir(t, f), "dev")
	if !slices.Equal(keys(ps), []string{"secretsprovider"}) {
		t.Errorf("another stack's key: %v", ps)
	}
	f = strings.Replace(complete, "awskms://alias/microk8s-platform-secrets-dev?region=us-east-1", "passphrase", 1)
	ps, _ = Check(dir(t, f), "dev")
	if !slices.Equal(keys(ps), []string{"secretsprovider"}) {
		t.Errorf("passphrase provider: %v", ps)
	}
}

func TestKubeconfigTargetNeedsNoSSH(t *testing.T) {
	ps, _ := Check(dir(t, "secretsprovider: awskms://alias/microk8s-platform-secrets-dev\nencryptedkey: x\nconfig:\n  microk8s-platform:target: kubeconfig\n  microk8s-platform:dbPassword:\n    secure: v1:a\n"), "dev")
	if len(ps) != 0 {
		t.Errorf("kubeconfig target: %v", ps)
	}
}

// The committed stack files hold only the shape; each operator adds the
// rest once (README). The check must say exactly that, before any cloud call.
func TestCommittedStacksSayWhatTheyLack(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, stack := range []string{"dev", "prod"} {
		ps, err := Check(root, stack)
		if err != nil {
			t.Fatal(err)
		}
		got := keys(ps)
		for _, k := range got {
			if !slices.Contains([]string{"secretsprovider", "encryptedkey", "adminCidrs", "sshPublicKey", "sshPrivateKey", "dbPassword", "alertEmails"}, k) {
				t.Errorf("%s: unexpected problem %s", stack, k)
			}
		}
		t.Logf("%s lacks %v", stack, got)
	}
}

// The alias must be the one infra/backend creates for the stack.
func TestAliasMatchesTheBootstrap(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "infra", "backend", "backend.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `func SecretsAlias(project, stack string) string { return "alias/" + project + "-secrets-" + stack }`) {
		t.Error("infra/backend SecretsAlias differs from stackcheck's")
	}
	if SecretsAlias("p", "dev") != "alias/p-secrets-dev" {
		t.Error(SecretsAlias("p", "dev"))
	}
}
