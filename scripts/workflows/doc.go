// Package workflows holds the contract test of .github/workflows (a
// dot-folder Go does not build): triggers, permissions, OIDC instead of
// keys, pinned actions, per-stack deploy concurrency, and that every job
// that runs pulumi against a stack opens the VM to its runner and always
// closes it again. actionlint (make actionlint) checks the syntax.
package workflows
