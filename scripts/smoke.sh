#!/usr/bin/env bash
# Smoke test of a deployed platform through Kong: post a comment and read it
# back. Retries while Kong and the service settle after an `up`.
#
# usage: scripts/smoke.sh http://<public-ip>/api/comment   (the appUrl output)
set -euo pipefail

base=${1:?usage: scripts/smoke.sh APP_URL (pulumi stack output appUrl)}
base=${base%/}
case "$base" in
  http://*|https://*) ;;
  *) echo "smoke: appUrl '$base' is not a URL (on a cluster without a load balancer, port-forward first)" >&2; exit 2 ;;
esac
tries=${SMOKE_TRIES:-30}
content="smoke-$(date +%s)-$$"
email="smoke@example.com"
body=$(printf '{"email":"%s","comment":"smoke test","content_id":"%s"}' "$email" "$content")

for i in $(seq 1 "$tries"); do
  if out=$(curl -fsS --max-time 10 -H 'Content-Type: application/json' -d "$body" "$base/new" 2>&1); then
    echo "smoke: POST $base/new -> $out"
    break
  fi
  [ "$i" -eq "$tries" ] && { echo "smoke: POST $base/new failed $tries times: $out" >&2; exit 1; }
  sleep 5
done

for i in $(seq 1 "$tries"); do
  if out=$(curl -fsS --max-time 10 "$base/list/$content" 2>&1) && grep -q "\"$email\"" <<<"$out"; then
    echo "smoke: GET $base/list/$content -> $out"
    echo "smoke: OK"
    exit 0
  fi
  sleep 2
done
echo "smoke: the comment did not come back from $base/list/$content: $out" >&2
exit 1
