"""Test helper: a real AWS API emulator (moto 5.2.5, in-process) for the invoker's integration tests.

Starts moto's server on PORT, creates what a deployed control plane has (cluster, task definitions whose
containers read secrets from Secrets Manager, a log group, a secret holding a canary value, the ledger table),
prints one JSON line
describing them, then serves a tiny control endpoint on CONTROL_PORT that edits a task in moto's ECS backend:
moto always reports exit code 0, and the tests need non-zero and missing exit codes too.

Usage: python moto_server.py PORT CONTROL_PORT CANARY
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
from moto.ecs.models import ecs_backends
from moto.server import ThreadedMotoServer

port, control_port, canary = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.environ["MOTO_PORT"] = str(port)  # moto's Step Functions interpreter calls back into this server
server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
server.start()
endpoint = f"http://127.0.0.1:{port}"
session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
client = lambda name: session.client(name, endpoint_url=endpoint)

ec2 = client("ec2")
subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
secret_arn = client("secretsmanager").create_secret(Name="deploy-runner/github-token", SecretString=canary)["ARN"]
client("logs").create_log_group(logGroupName="/deploy-runner/tasks")
ecs = client("ecs")
cluster_arn = ecs.create_cluster(clusterName="deploy-runner")["cluster"]["clusterArn"]
definitions = {}
for name in ["planner", "applier", "image-builder"]:
    definitions[name] = ecs.register_task_definition(
        family=f"deploy-runner-{name}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=[{
            "name": "runner",
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/deploy-runner:v1",
            "memory": 1024,
            "essential": True,
            "secrets": [{"name": "GITHUB_TOKEN", "valueFrom": secret_arn}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/deploy-runner/tasks", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "deploy"}},
        }],
    )["taskDefinition"]["taskDefinitionArn"]

# The deployment ledger and apply locks, keyed as the infra module creates them.
client("dynamodb").create_table(
    TableName="deploy-runner-ledger", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
)

print(json.dumps({"endpoint": endpoint, "cluster_arn": cluster_arn, "subnet": subnet, "security_group": group,
                  "task_definitions": definitions, "secret_arn": secret_arn, "log_group": "/deploy-runner/tasks",
                  "ledger_table": "deploy-runner-ledger"}),
      flush=True)


class Control(BaseHTTPRequestHandler):
    """POST {"task_arn", "last_status", "exit_code" (int or null), "stop_code", "stopped_reason"}."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for regions in ecs_backends.values():
            for backend in regions.values():
                for tasks in backend.tasks.values():
                    task = tasks.get(body["task_arn"])
                    if task is None:
                        continue
                    task.last_status = body.get("last_status", "STOPPED")
                    task.desired_status = "STOPPED"
                    task.stop_code = body.get("stop_code")
                    task.stopped_reason = body.get("stopped_reason", "")
                    for container in task.containers:
                        container.exitCode = body.get("exit_code")
                        container.last_status = task.last_status
                    self.send_response(204)
                    self.end_headers()
                    return
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", control_port), Control).serve_forever()
