// Package smoketest tests scripts/smoke.sh, the deploy workflow's check
// after `up`, against the real comments service on 127.0.0.1.
package smoketest
