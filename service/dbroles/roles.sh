#!/bin/bash
# Keeps the comments database's roles in line with its Secret. It runs as a
# sidecar next to PostgreSQL (the official postgres image, so psql is there)
# and talks to the server over the pod's unix socket, where that image's
# pg_hba.conf trusts local connections: no superuser password is needed here.
#
# The image applies POSTGRES_PASSWORD only when it initialises an empty data
# directory, so without this a password change would reach the Secret and the
# service's DATABASE_URL but never the role. Whenever the mounted Secret
# files change (the kubelet refreshes them in place) and once at start, it:
#   - creates the application role if missing and sets it to LOGIN, no
#     superuser, no CREATEROLE/CREATEDB/REPLICATION/BYPASSRLS, with the
#     password in $SECRETS_DIR/app-password;
#   - creates the application database if missing; only the application role
#     (and superusers) may connect to it, nobody but superusers to the others
#     (databases created later are closed at the next pass);
#   - creates a schema named after the role, owned by it, as its search_path;
#     public stays closed to it;
#   - sets the superuser's password from $SECRETS_DIR/admin-password when
#     that file is there and not empty.
#
# Environment: APP_ROLE, APP_DATABASE, SECRETS_DIR; PGHOST, PGPORT, PGUSER as
# for psql (PGUSER is the superuser). ONCE=1 applies once and exits with
# psql's status (the tests). The password never reaches argv or the log.
# For the probes it touches $STATE_DIR/heartbeat on every pass (liveness: the
# loop runs) and $STATE_DIR/applied after the first success (readiness).
set -uo pipefail
: "${APP_ROLE:?}" "${APP_DATABASE:?}" "${SECRETS_DIR:?}"
state="${STATE_DIR:-/tmp}"
trap 'exit 0' TERM INT

fingerprint() { cat "$SECRETS_DIR"/* 2>/dev/null | sha256sum; }

apply() {
	[ -s "$SECRETS_DIR/app-password" ] || { echo "roles: $SECRETS_DIR/app-password is missing or empty" >&2; return 1; }
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -v app_role="$APP_ROLE" -v app_db="$APP_DATABASE" <<'SQL'
\set app_password `cat "$SECRETS_DIR/app-password"`
\set admin_password `cat "$SECRETS_DIR/admin-password" 2>/dev/null || true`
SELECT format('CREATE ROLE %I', :'app_role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'app_password';
SELECT :'admin_password' <> '' AS set_admin \gset
\if :set_admin
ALTER ROLE CURRENT_USER PASSWORD :'admin_password';
\endif
SELECT format('CREATE DATABASE %I', :'app_db')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"app_db" TO :"app_role";
SELECT format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', datname)
  FROM pg_database WHERE datname <> :'app_db' AND datallowconn \gexec
\connect :"app_db"
CREATE SCHEMA IF NOT EXISTS :"app_role" AUTHORIZATION :"app_role";
ALTER SCHEMA :"app_role" OWNER TO :"app_role";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER ROLE :"app_role" IN DATABASE :"app_db" SET search_path = :"app_role";
SQL
}

last=""
while :; do
	touch "$state/heartbeat"
	now="$(fingerprint)"
	if [ "$now" != "$last" ]; then
		if pg_isready -q -d postgres && apply; then
			last="$now"
			touch "$state/applied"
			echo "roles: role $APP_ROLE, database $APP_DATABASE and schema $APP_ROLE match the Secret"
		elif [ -n "${ONCE:-}" ]; then
			exit 1
		fi
	fi
	[ -n "${ONCE:-}" ] && exit 0
	sleep "${INTERVAL:-5}" &
	wait $!
done
