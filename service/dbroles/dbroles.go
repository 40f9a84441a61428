// Package dbroles holds the script that keeps the database's roles in line
// with the comments Secret: the application role (least privilege: LOGIN,
// its own schema, nothing else) and its password, the application database,
// and the superuser's password. The platform runs Script, unchanged, in a
// sidecar container of the PostgreSQL pod (infra/app); the tests here run
// the same Script against a real PostgreSQL.
//
// Why a sidecar: the official postgres image applies POSTGRES_PASSWORD only
// when it initialises an empty data directory (docker-library/postgres,
// docker-entrypoint.sh: initdb --pwfile runs only when DATABASE_ALREADY_EXISTS
// is empty), so a changed password must be applied with ALTER ROLE by
// something that can reach the server as a superuser. The image's pg_hba.conf
// trusts the pod's unix socket, so the sidecar needs no superuser password,
// and it re-applies whenever the kubelet refreshes the mounted Secret files,
// with no restart of PostgreSQL.
package dbroles

import _ "embed"

// Script is the bash program the sidecar runs (bash -c Script); see roles.sh.
//
//go:embed roles.sh
var Script string

// Files the script touches under STATE_DIR, for the sidecar's probes.
const (
	HeartbeatFile = "heartbeat" // every pass of the loop (liveness)
	AppliedFile   = "applied"   // after the first successful pass (readiness)
)

// The Secret keys the sidecar reads, as files under SECRETS_DIR.
const (
	AppPasswordFile   = "app-password"   // the application role's password (required)
	AdminPasswordFile = "admin-password" // the superuser's password (optional)
)
