#!/usr/bin/env bash
# Installs what `make test`, `make local` and `make e2e` need besides Go and
# make, on Debian/Ubuntu, and only what is missing; the one place for it
# (`make test`, `make local` and .ci/run call it). A second run installs
# nothing.
#
# usage: scripts/deps.sh [test|local|bench]   (default test)
#   local  openssl and curl (the sandbox's certificates and health checks)
#   test   those, plus shellcheck, git, jq (the workflows' steps), PostgreSQL's server binaries
#          (initdb, pg_ctl) and psql, systemd-analyze, the postgres system user when run as root
#          (PostgreSQL refuses root), and a check for moto_server
#   bench  wrk and taskset (make bench), and PostgreSQL
set -euo pipefail

mode=${1:-test}
missing=()
want() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }

want openssl openssl
want curl curl
if [ "$mode" = bench ]; then
  want wrk wrk
  want taskset util-linux
fi
if [ "$mode" = test ] || [ "$mode" = bench ]; then
  if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
fi
if [ "$mode" = test ]; then
  want shellcheck shellcheck
  want git git
  want jq jq
  want psql postgresql-client     # the restore drill's queries
  want systemd-analyze systemd    # the data disk's drop-ins, parsed by systemd itself
fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      echo "deps: missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) or run this as root" >&2
      exit 1
    fi
  fi
  command -v apt-get >/dev/null || { echo "deps: missing ${missing[*]} and no apt-get to install them with" >&2; exit 1; }
  echo "deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ca-certificates "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ] || [ "$mode" = bench ]; then
  # PostgreSQL refuses root; the tests run it as this user when run as root.
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
  fi
fi
if [ "$mode" = test ]; then
  # The AWS emulator for the lock and access-helper tests: a Python
  # program (PyPI), not a Debian package. This machine image ships it;
  # elsewhere pipx installs it.
  if ! command -v moto_server >/dev/null; then
    if command -v pipx >/dev/null; then pipx install 'moto[server]'; else
      echo "deps: moto_server is missing: install it with pipx install 'moto[server]' (or pip)" >&2
      exit 1
    fi
  fi
fi
