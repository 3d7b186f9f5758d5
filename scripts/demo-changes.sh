#!/usr/bin/env bash
# Demo, part 2: the whole pipeline with `deploy-runner ci --local`, offline, with the real deploy task and
# terraform. Builds a temp infrastructure-live repo (base commit), makes the head commit (an _envcommon edit, a
# modified unit, a deleted unit, a touched ecs-deploy-runner), then runs CI for a push to main: detect, plan, apply
# waves in deploy order. Then a failure: stage's apply fails and prod never runs; the next push picks up what they
# missed (each account diffs from its entry in the deployment ledger), and resuming the old run is refused.
set -euo pipefail
bin_dir=${1:?usage: demo-changes.sh BIN_DIR}
bin="$bin_dir/deploy-runner"
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset GITHUB_EVENT_PATH GITHUB_RUN_ID SLACK_WEBHOOK_URL

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

# The demo policy: the example policy, this repo, its accounts, plain terraform, and an approval gate on prod.
policy="$work/policy.json"
python3 - "$root/examples/policy.json" "$repo" "$policy" <<'PY'
import json, sys
source, repo, target = sys.argv[1:4]
policy = json.load(open(source))
policy["repos"]["infrastructure_live"]["exact"] = ["file://" + repo]
policy["accounts"] = {name: {"id": a["id"], "deploy_order": a["deploy_order"]}
                      for name, a in json.load(open(repo + "/accounts.json")).items()}
policy["binary"] = "terraform"
policy["approval_accounts"] = ["prod"]
json.dump(policy, open(target, "w"), indent=2)
PY
export DEPLOY_RUNNER_TASK_CONFIG="{\"tool_path\": \"$root/.tools/bin/terraform\"}"
ci() {
  "$bin" ci --local --config "$policy" --state-dir "$work/state" --actor demo --event push --branch main \
    --repo "$repo" --repo-url "file://$repo" --approve prod --format text "$@"
}

printf '\n== 1. A push to main: detect, plan, apply in deploy order (prod approved up front with --approve) ==\n\n'
ci 2>&1 | grep -v '^\(dev\|stage\|prod\|shared\) | ' || true

printf '\n== 2. A failure: stage cannot apply, so prod never runs ==\n\n'
sed -i 's/image_version = "v1.5.0"/image_version = "v1.6.0"/' "$repo/_envcommon/app.hcl"
cat >> "$repo/stage/us-east-1/stage/app/main.tf" <<'TF'

# Stands in for an outage in stage: the apply fails while DEMO_STAGE_OUTAGE is set.
resource "terraform_data" "stage_health" {
  provisioner "local-exec" {
    command = "test -z \"$DEMO_STAGE_OUTAGE\" || { echo 'stage is down' >&2; exit 1; }"
  }
}
TF
git_ add -A
git_ commit -q -m "bump the app image again; stage gains a health check"
set +e
DEMO_STAGE_OUTAGE=1 ci 2>&1 | grep -v '^\(dev\|stage\|prod\|shared\) | ' | tee "$work/failed.txt"
set -e
run_id=$(sed -n 's/.*resume --run \([A-Za-z0-9_-]*\).*/\1/p' "$work/failed.txt" | head -1)
echo "  per-wave logs: $(cd "$work/state/runs/$run_id" && ls *.log | tr '\n' ' ')"

printf '\n== 3. The outage is over. The next push (a dev network tweak) also picks up what stage and prod missed ==\n\n'
# Each account is diffed from what it last deployed (the ledger): dev from the failed run's commit, stage and prod
# from the first push's. Units applied before plan updates, not creates: the local state outlives the clones.
sed -i 's/default = { tier = "standard" }/default = { tier = "large" }/' "$repo/dev/us-east-1/dev/network/main.tf"
git_ add -A
git_ commit -q -m "widen the dev network again"
ci 2>&1 | grep -v '^\(dev\|stage\|prod\|shared\) | '

printf '\n== 4. The ledger: what each account last deployed from main ==\n\n'
"$bin" ledger --local --config "$policy" --state-dir "$work/state" --repo-url "file://$repo" --format text

printf '\n== 5. Resuming the old failed run now would roll stage back: refused (ledger_moved) ==\n\n'
# Its units were detected before step 3 deployed stage; the deploy task would refuse the older commit too
# (stale_commit), but the rollout never gets that far.
set +e
"$bin" resume --local --config "$policy" --state-dir "$work/state" --actor demo --approve prod --run "$run_id" \
  --format text 2>&1 | grep -E 'ledger_moved|stale_commit|^resume ' | sed 's/^deploy-runner-task: //'
set -e
