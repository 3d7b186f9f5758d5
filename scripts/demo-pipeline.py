"""Demo, part 3: plan every selected unit, then apply account waves in deploy order, with the real deploy task.

This is what `deploy-runner ci --local` will do in one command; until it lands, this script drives the pieces
that exist: the change report from `deploy-runner changes`, and `deploy-runner-task` running real terraform
(binary = terraform in the demo policy) as local processes. Usage: demo-pipeline.py BIN_DIR REPO BASE HEAD
"""
import json
import os
import subprocess
import sys

bin_dir, repo, base, head = sys.argv[1:5]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
url = "file://" + repo

policy = json.load(open(os.path.join(root, "examples", "policy.json")))
policy["repos"]["infrastructure_live"]["exact"] = [url]
policy["accounts"] = {
    name: {"id": entry["id"], "deploy_order": entry["deploy_order"]}
    for name, entry in json.load(open(os.path.join(repo, "accounts.json"))).items()
}
policy["binary"] = "terraform"
env = dict(os.environ)
env["DEPLOY_RUNNER_POLICY"] = json.dumps(policy)
env["DEPLOY_RUNNER_TASK_CONFIG"] = json.dumps({"tool_path": os.path.join(root, ".tools", "bin", "terraform")})

report = json.loads(subprocess.run(
    [os.path.join(bin_dir, "deploy-runner"), "changes", "--repo", repo, "--base", base, "--head", head,
     "--format", "json"], check=True, capture_output=True, text=True).stdout)


def task(request, quiet=False):
    """Runs the deploy task on one request; returns (exit code, last JSON line of stdout)."""
    proc = subprocess.run([os.path.join(bin_dir, "deploy-runner-task"), "run", "--request", json.dumps(request)],
                          env=env, capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    shown = [l for l in lines if "Plan:" in l or "No changes" in l or "Apply complete" in l
             or "Destroy complete" in l or "Error" in l]
    if not quiet:
        for line in shown:
            print("    " + line)
    summary = next((json.loads(l) for l in reversed(lines) if l.startswith("{")), None)
    return proc.returncode, summary


print("\n== Plans: every selected unit, at the head commit (deleted units: plan-destroy at the base) ==\n")
failed = False
for unit in report["units"]:
    request = {"action": "plan", "actor": "demo", "repo": url, "ref": report["head"], "path": unit["path"]}
    if unit["change"] == "deleted":
        request.update(action="plan-destroy", source_ref=report["base"])
    print(f"  {unit['account']:<6} {request['action']:<12} {unit['path']}")
    code, _ = task(request)
    failed |= code != 0
for skipped in report["skipped"]:
    print(f"  skipped             {skipped['path']} ({skipped['reason']})")

if failed:
    sys.exit("a plan failed; nothing is applied")

print("\n== Apply: one wave per account, in deploy order, at the planned commit ==")
print("   (the demo keeps terraform state local to each run, so every apply creates its resource afresh)\n")
waves = {}
for unit in report["units"]:
    waves.setdefault((unit["deploy_order"], unit["account"]), []).append(unit)
for (order, account), units in sorted(waves.items()):
    request = {"action": "rollout", "actor": "demo", "repo": url, "ref": report["head"], "mode": "apply",
               "units": [{"path": u["path"], "change": u["change"], **({"source_ref": report["base"]}
                          if u["change"] == "deleted" else {})} for u in units]}
    code, summary = task(request, quiet=True)
    results = ", ".join(f"{u['path'].split('/')[-1]} {u['operation']} {u['status']}"
                        + (f" (+{u['add']} ~{u['change']} -{u['destroy']})" if "add" in u else "")
                        for u in summary["units"])
    print(f"  wave {order} {account:<6} {'ok    ' if code == 0 else 'FAILED'} {results}")
    if code != 0:
        sys.exit(f"wave {account} failed; later accounts were not applied")
print("\nAll waves applied.")
