#!/usr/bin/env bash
# Demo, part 1: every bundled example request through the gate, against the example policy.
# Prints one line per request: the file, the decision, the reason and the gate's explanation.
set -euo pipefail
bin=${1:?usage: demo-check.sh PATH/TO/deploy-runner}
root=$(cd "$(dirname "$0")/.." && pwd)

printf '\n== The gate: bundled requests against examples/policy.json ==\n\n'
allowed=0 denied=0
for request in "$root"/examples/requests/*.json; do
  name=$(basename "$request" .json)
  set +e
  line=$("$bin" check --format text --config "$root/examples/policy.json" --request "$request")
  code=$?
  set -e
  case $code in
    0) allowed=$((allowed + 1)) ;;
    3) denied=$((denied + 1)) ;;
    *) echo "deploy-runner check failed on $name (exit $code)" >&2; exit 1 ;;
  esac
  printf '%-30s %s\n' "$name" "$line"
done
printf '\n%d allowed, %d denied.\n' "$allowed" "$denied"
