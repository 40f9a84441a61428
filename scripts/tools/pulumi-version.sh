#!/usr/bin/env bash
# Prints the Pulumi version everything here uses, from its one source: the
# Pulumi SDK the root go.mod pins (github.com/pulumi/pulumi/sdk/v3). The
# workflows install this CLI version, scripts/tools/build.sh stamps it on
# the CLI it builds from scripts/tools/pulumi (whose go.mod pins
# github.com/pulumi/pulumi/pkg/v3 at the same version; a test checks).
set -euo pipefail
gomod="$(cd "$(dirname "$0")/../.." && pwd)/go.mod"
awk '$1 == "github.com/pulumi/pulumi/sdk/v3" { sub(/^v/, "", $2); print $2; found = 1; exit }
     END { if (!found) { print "pulumi-version: no github.com/pulumi/pulumi/sdk/v3 in " FILENAME > "/dev/stderr"; exit 1 } }' "$gomod"
