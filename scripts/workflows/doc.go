// Package workflows holds the contract test of .github/workflows (a
// dot-folder Go does not build) and .github/dependabot.yml: triggers,
// permissions (the service workflow only what it uses), OIDC instead of
// keys, actions pinned to commits of node24 releases, per-stack deploy
// concurrency, the deploy role read from the stack's environment, destroy
// only with the stack's name typed again, make stackcheck before any cloud
// call, pull-request previews of dev only, jobs ending within their role
// session, the drift check's own concurrency group, its skip while the
// deploy lock is held, its one issue and its errors reported as errors, no
// latest image tag, and that every job that runs pulumi against a stack
// opens the VM to its runner's address and always closes that same
// address. actionlint (make actionlint) checks the syntax. Each rule names
// the upstream fact it relies on.
package workflows
