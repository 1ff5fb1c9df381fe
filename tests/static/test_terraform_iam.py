"""IAM in deploy/terraform, read with python-hcl2: role names, no wildcard actions, and
every permission limited to what the issue allows (S3 prefixes, the one secret, the one
ECS service)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.deploy import (
    EXAMPLES,
    MODULES,
    TERRAFORM,
    locals_of,
    module_dirs,
    named,
    parse_file,
    parse_tfvars,
    resources,
    walk,
)

IAM = MODULES / "iam"

# The seed's three role names, plus the roles the issue adds.
ROLE_NAMES = {
    "producer": "${var.name}-lambda-producer-role",
    "ecs_task": "${var.name}-ecs-task-role",
    "postproc": "${var.name}-lambda-postproc-role",
    "autoscaler": "${var.name}-lambda-autoscaler-role",
    "scheduler": "${var.name}-scheduler-role",
    "ecs_task_execution": "${var.name}-ecs-task-execution-role",
}

# AWS managed policies the stack attaches, and why.
MANAGED_POLICIES = {
    # Lambda in a VPC: create/delete its network interfaces, write its own log streams.
    "service-role/AWSLambdaVPCAccessExecutionRole",
    # The CI plan role reads (never writes) everything a plan refreshes.
    "ReadOnlyAccess",
}


def iam_locals() -> dict[str, Any]:
    return locals_of(IAM)


def resolve(entry: Any, scope: dict[str, Any]) -> Any:
    """A statement given as ``${local.name}`` resolved to its object."""
    if isinstance(entry, str):
        match = re.fullmatch(r"\$\{local\.(\w+)\}", entry)
        assert match, f"cannot resolve {entry}"
        return scope[match.group(1)]
    return entry


def role_statements() -> dict[str, list[dict[str, Any]]]:
    """Each role's statements as written in local.statements plus its S3 statements."""
    scope = iam_locals()
    result = {
        role: [resolve(entry, scope) for entry in entries]
        for role, entries in scope["statements"].items()
    }
    for statement in scope["s3"]:
        result.setdefault(statement["role"], []).append(statement)
    return result


def all_allow_statements() -> list[tuple[str, dict[str, Any]]]:
    """Every dict with an ``actions`` list anywhere in the Terraform, except Deny ones."""
    found = []
    for directory in module_dirs():
        for path in sorted(directory.glob("*.tf")):
            for node in walk(parse_file(path)):
                is_statement = isinstance(node, dict) and isinstance(node.get("actions"), list)
                if is_statement and node.get("effect") != "Deny":
                    found.append((f"{path.relative_to(TERRAFORM)}", node))
    return found


def test_role_names_are_the_seeds() -> None:
    roles = iam_locals()["roles"]
    assert {key: role["name"] for key, role in roles.items()} == ROLE_NAMES
    # name is "<app>-<env>": the root passes local.name, built from app and environment.
    assert named(TERRAFORM, "module")["iam"]["name"] == "${local.name}"
    assert locals_of(TERRAFORM)["name"] == "${var.app}-${var.environment}"


@pytest.mark.parametrize("example", ["dev.tfvars", "prod.tfvars"])
def test_the_examples_give_the_seeds_role_names(example: str) -> None:
    values = parse_tfvars(EXAMPLES / example)
    app = values.get("app", named(TERRAFORM, "variable")["app"]["default"])
    prefix = f"{app}-{values['environment']}"
    names = {ROLE_NAMES[key].replace("${var.name}", prefix) for key in ROLE_NAMES}
    assert f"{prefix}-lambda-producer-role" in names
    assert f"{prefix}-ecs-task-role" in names
    assert f"{prefix}-lambda-postproc-role" in names
    assert all(len(name) <= 64 for name in names), "IAM role names are at most 64 characters"


def test_every_role_trusts_only_its_service() -> None:
    services = {key: role["service"] for key, role in iam_locals()["roles"].items()}
    assert services == {
        "producer": "lambda.amazonaws.com",
        "autoscaler": "lambda.amazonaws.com",
        "postproc": "lambda.amazonaws.com",
        "ecs_task": "ecs-tasks.amazonaws.com",
        "ecs_task_execution": "ecs-tasks.amazonaws.com",
        "scheduler": "scheduler.amazonaws.com",
    }


def test_no_allow_statement_has_a_wildcard_action() -> None:
    statements = all_allow_statements()
    assert len(statements) > 20, "the walk found too few statements to be trusted"
    for where, statement in statements:
        for action in statement["actions"]:
            assert "*" not in action, f"{where}: {statement.get('sid')} allows {action}"
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), f"{where}: {action}"


def test_the_wildcard_rule_catches_a_wildcard() -> None:
    # The walk above sees nested statements: a planted wildcard would be found.
    planted = {"statement": [{"sid": "x", "actions": ["s3:*"], "resources": ["*"]}]}
    actions = [
        action
        for node in walk(planted)
        if isinstance(node, dict) and isinstance(node.get("actions"), list)
        for action in node["actions"]
    ]
    assert any("*" in action for action in actions)


def test_only_the_listed_aws_managed_policies_are_attached() -> None:
    attached = set()
    for directory in module_dirs():
        for (type_, _), body in resources(directory).items():
            if type_ == "aws_iam_role_policy_attachment":
                match = re.search(r":iam::aws:policy/(.+)$", body["policy_arn"])
                assert match, body["policy_arn"]
                attached.add(match.group(1))
    assert attached == MANAGED_POLICIES


def test_star_resources_only_for_actions_without_resource_level_permissions() -> None:
    allowed = {
        frozenset({"ecr:GetAuthorizationToken"}),
        frozenset({"cloudwatch:PutMetricData"}),
    }
    for role, statements in role_statements().items():
        for statement in statements:
            if "*" in statement["resources"]:
                assert frozenset(statement["actions"]) in allowed, (role, statement)


def test_metrics_may_be_published_to_the_pipeline_namespace_only() -> None:
    autoscaler = {s["sid"]: s for s in role_statements()["autoscaler"]}
    condition = autoscaler["PublishPipelineMetrics"]["condition"]
    assert condition["variable"] == "cloudwatch:namespace"
    assert condition["values"] == ["${var.metric_namespace}"]
    modules = named(TERRAFORM, "module")
    assert modules["iam"]["metric_namespace"] == "${local.metric_namespace}"
    assert modules["observability"]["metric_namespace"] == "${local.metric_namespace}"


def test_s3_access_is_limited_to_the_bucket_and_the_prefixes_each_role_needs() -> None:
    object_resource = re.compile(
        r"\$\{local\.(input|output)_arn\}/\$\{local\.(hydrofabric|network_index|outputs|postproc)\}(/\*)?"
    )
    seen: dict[str, set[tuple[str, str]]] = {}
    for statement in iam_locals()["s3"]:
        for action in statement["actions"]:
            assert action in {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}, action
        for resource in statement["resources"]:
            if statement["actions"] == ["s3:ListBucket"]:
                assert resource in {"${local.input_arn}", "${local.output_arn}"}, resource
            else:
                match = object_resource.fullmatch(resource)
                assert match, f"{statement['sid']}: {resource} is not under a pipeline prefix"
                for action in statement["actions"]:
                    seen.setdefault(statement["role"], set()).add((action, match.group(2)))
    assert seen == {
        "ecs_task": {
            ("s3:GetObject", "hydrofabric"),
            ("s3:GetObject", "network_index"),
            ("s3:PutObject", "network_index"),
            ("s3:PutObject", "outputs"),
        },
        "postproc": {
            ("s3:GetObject", "hydrofabric"),
            ("s3:GetObject", "outputs"),
            ("s3:GetObject", "postproc"),
            ("s3:PutObject", "postproc"),
        },
    }
    prefix_locals = iam_locals()
    assert prefix_locals["hydrofabric"] == '${trim(var.hydrofabric_location, "/")}'
    assert prefix_locals["outputs"] == '${trim(var.output_prefix, "/")}'
    assert prefix_locals["postproc"] == '${trim(var.postproc_prefix, "/")}'


def test_only_the_worker_and_the_postprocessor_touch_s3() -> None:
    for role, statements in role_statements().items():
        uses_s3 = any(a.startswith("s3:") for s in statements for a in s["actions"])
        assert uses_s3 == (role in {"ecs_task", "postproc"}), role


def test_secret_reads_are_limited_to_the_one_secret() -> None:
    for role, statements in role_statements().items():
        for statement in statements:
            if "secretsmanager:GetSecretValue" in statement["actions"]:
                expected = (
                    "${var.worker_secret_arns}"
                    if role == "ecs_task_execution"
                    else ["${var.broker_secret_arn}"]
                )
                assert statement["resources"] == expected, (role, statement)
    readers = {
        role
        for role, statements in role_statements().items()
        if any("secretsmanager:GetSecretValue" in s["actions"] for s in statements)
    }
    assert readers == {"producer", "autoscaler", "ecs_task", "ecs_task_execution"}


def test_update_service_is_limited_to_the_worker_service() -> None:
    scope = iam_locals()
    holders = [
        (role, statement)
        for role, statements in role_statements().items()
        for statement in statements
        if any(action.startswith("ecs:UpdateService") for action in statement["actions"])
    ]
    assert [role for role, _ in holders] == ["autoscaler"]
    assert holders[0][1]["resources"] == ["${local.worker_service}"]
    assert scope["worker_service"].endswith(
        ":service/${var.cluster_name}/${var.worker_service_name}"
    )


def test_the_worker_may_protect_its_own_tasks_from_scale_in() -> None:
    scope = iam_locals()
    [statement] = [
        s for s in role_statements()["ecs_task"] if "ecs:UpdateTaskProtection" in s["actions"]
    ]
    assert statement["resources"] == ["${local.cluster_tasks}"]
    assert scope["cluster_tasks"].endswith(":task/${var.cluster_name}/*")


def test_the_scheduler_may_invoke_only_the_three_functions() -> None:
    [invoke] = [
        s for s in role_statements()["scheduler"] if "lambda:InvokeFunction" in s["actions"]
    ]
    assert invoke["resources"] == "${values(local.function_arns)}"


def test_only_the_scheduler_and_the_producer_invoke_functions_and_the_producer_one() -> None:
    invokers = {
        role: statement
        for role, statements in role_statements().items()
        for statement in statements
        if any(action.startswith("lambda:") for action in statement["actions"])
    }
    assert set(invokers) == {"scheduler", "producer"}
    wake = invokers["producer"]
    assert wake["actions"] == ["lambda:InvokeFunction"]
    assert wake["resources"] == ['${local.function_arns["autoscaler"]}']
    assert iam_locals()["function_arns"].endswith(':function:${name}"}}')


def test_the_bucket_policy_handoff_names_the_roles_as_principals() -> None:
    storage = resources(MODULES / "storage", "data")[("aws_iam_policy_document", "handoff")]
    [dynamic] = storage["dynamic"]
    content = dynamic["statement"]["content"][0]
    assert content["principals"][0]["identifiers"] == ["${statement.value.role_arn}"]
    assert content["effect"] == "Allow"
    assert named(TERRAFORM, "module")["storage"]["s3_statements"] == "${module.iam.s3_statements}"
    assert named(TERRAFORM, "output")["bucket_policy_statements"]["value"] == (
        "${module.storage.bucket_policy_statements}"
    )
