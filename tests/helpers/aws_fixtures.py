"""Test helper for the real-provider infra test: talks to a moto server at ENDPOINT with boto3.

    python aws_fixtures.py ENDPOINT setup     # what infra/examples/complete looks up by name; prints the VPC and subnets
    python aws_fixtures.py ENDPOINT inspect   # what the module created, as the AWS API reports it (one JSON document)
"""
import json
import sys

import boto3

endpoint, command = sys.argv[1], sys.argv[2]
session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
client = lambda name: session.client(name, endpoint_url=endpoint)

if command == "setup":
    ec2 = client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    secrets = client("secretsmanager")
    for name in ["deploy-runner/github-read-token", "deploy-runner/github-token", "deploy-runner/slack-webhook"]:
        secrets.create_secret(Name=name, SecretString="not-a-real-secret")
    ecr = client("ecr")
    for name in ["deploy-runner", "deploy-runner-image-builder", "apps"]:
        ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    print(json.dumps({"vpc_id": vpc, "private_subnet_ids": subnets[:2]}))
elif command == "inspect":
    ecs, iam, lam, logs = client("ecs"), client("iam"), client("lambda"), client("logs")
    families = ["deploy-runner-planner", "deploy-runner-applier", "deploy-runner-image-builder"]
    task_definitions = {f: ecs.describe_task_definition(taskDefinition=f)["taskDefinition"] for f in families}
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        policies = {p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                    for p in iam.list_role_policies(RoleName=name)["PolicyNames"]}
        roles[name] = {"trust": role["AssumeRolePolicyDocument"], "policies": policies}
    users = {}
    for user in iam.list_users()["Users"]:
        name = user["UserName"]
        users[name] = {p: iam.get_user_policy(UserName=name, PolicyName=p)["PolicyDocument"]
                       for p in iam.list_user_policies(UserName=name)["PolicyNames"]}
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    log_groups = {g["logGroupName"]: g.get("retentionInDays") for g in logs.describe_log_groups()["logGroups"]}
    print(json.dumps({"task_definitions": task_definitions, "roles": roles, "users": users,
                      "functions": functions, "log_groups": log_groups}, default=str))
else:
    sys.exit(f"unknown command {command}")
