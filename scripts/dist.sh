#!/usr/bin/env bash
# Packages the CLI for one target exactly as the release publishes it and as the CI templates download it:
#   <out>/deploy-runner-<target>.tar.gz         deploy-runner and deploy-runner-task at the top level, plus README.md
#   <out>/deploy-runner-<target>.tar.gz.sha256  "<sha256>  deploy-runner-<target>.tar.gz" (for `sha256sum -c`)
# `make dist` builds the release binaries and calls this; the release workflow calls `make dist`; a test packages the
# debug binaries with it and checks what the templates expect.
#
# usage: scripts/dist.sh TARGET BIN_DIR OUT_DIR
set -euo pipefail
target=${1:?usage: dist.sh TARGET BIN_DIR OUT_DIR} bin_dir=${2:?} out=${3:?}
root=$(cd "$(dirname "$0")/.." && pwd)
name="deploy-runner-${target}"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for binary in deploy-runner deploy-runner-task; do
  test -x "$bin_dir/$binary" || { echo "dist.sh: $bin_dir/$binary is missing" >&2; exit 1; }
  cp "$bin_dir/$binary" "$stage/"
done
cp "$root/README.md" "$stage/"
mkdir -p "$out"
# Members at the top level, so `tar -xzf <archive> -C /usr/local/bin deploy-runner` extracts just the CLI.
tar -czf "$out/$name.tar.gz" -C "$stage" deploy-runner deploy-runner-task README.md
if command -v sha256sum >/dev/null; then sum=(sha256sum); else sum=(shasum -a 256); fi
(cd "$out" && "${sum[@]}" "$name.tar.gz" > "$name.tar.gz.sha256")
echo "$out/$name.tar.gz"
