#!/usr/bin/env bash
# Prints the subject (sub claim) of this GitHub Actions job's OIDC token
# for AWS: exactly what the role's trust policy must name. GitHub gives
# repositories created or renamed on or after 2026-07-15 (and older ones
# that opt in) the immutable form repo:OWNER@OWNER_ID/REPO@REPO_ID:...,
# others repo:OWNER/REPO:... (README "Deploy from GitHub Actions"). The
# token itself is never printed. Needs `permissions: id-token: write`,
# which sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN
# (GitHub docs, "OpenID Connect", requesting the token).
set -euo pipefail
if [ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" ] || [ -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]; then
  echo "oidc-subject: no OIDC token to ask for: the job needs 'permissions: id-token: write'" >&2
  exit 1
fi
token=$(curl -fsS --max-time 10 -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
  "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=${OIDC_AUDIENCE:-sts.amazonaws.com}" | jq -r .value)
payload=$(cut -d. -f2 <<<"$token" | tr '_-' '/+')
# base64url drops the padding; put it back.
while [ $((${#payload} % 4)) -ne 0 ]; do payload="$payload="; done
sub=$(base64 -d <<<"$payload" | jq -r .sub)
echo "OIDC subject: $sub"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "OIDC subject of this job (what the role's trust policy names): \`$sub\`" >> "$GITHUB_STEP_SUMMARY"
fi
