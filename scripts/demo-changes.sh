#!/usr/bin/env bash
# Demo, parts 2 and 3: change detection on a real git history of examples/infrastructure-live, then plans and
# apply waves with the real deploy task and terraform.
# Builds a temp repo (base commit), makes the head commit (an _envcommon edit, a modified unit, a deleted unit,
# a touched ecs-deploy-runner), then asks `deploy-runner changes` what to plan and apply, in deploy order.
set -euo pipefail
bin_dir=${1:?usage: demo-changes.sh BIN_DIR}
bin="$bin_dir/deploy-runner"
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

repo="$work/infrastructure-live"
cp -R "$root/examples/infrastructure-live" "$repo"
git_() { git -C "$repo" -c user.name=demo -c user.email=demo@example.com -c commit.gpgsign=false "$@"; }
git_ init -q -b main
git_ add -A
git_ commit -q -m "base: the example infrastructure-live"

sed -i 's/image_version = "v1.4.0"/image_version = "v1.5.0"/' "$repo/_envcommon/app.hcl"
sed -i 's/default = {}/default = { tier = "standard" }/' "$repo/dev/us-east-1/dev/network/main.tf"
rm -r "$repo/dev/us-east-1/dev/queue"
sed -i 's/runner_image_tag = "v0.1.0"/runner_image_tag = "v0.2.0"/' "$repo/_envcommon/mgmt/ecs-deploy-runner.hcl"
echo "# touched" >> "$repo/shared/us-east-1/mgmt/ecs-deploy-runner/main.tf"
git_ add -A
git_ commit -q -m "head: bump the app image, widen the dev network, drop the dev queue, touch the runner"

printf '\n== Change detection: what the head commit touches, in deploy order ==\n\n'
git_ --no-pager diff --stat HEAD~1 HEAD | sed 's/^/  /'
echo
"$bin" changes --repo "$repo" --base HEAD~1 --head HEAD --format text

python3 "$root/scripts/demo-pipeline.py" "$bin_dir" "$repo" "$(git_ rev-parse HEAD~1)" "$(git_ rev-parse HEAD)"
