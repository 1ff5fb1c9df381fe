"""docs/asyncapi.yaml: generated from the code, never stale, and valid AsyncAPI 3.0.

Validity is the AsyncAPI project's own verdict: tools/asyncapi/validate.mjs runs the
pinned @asyncapi/parser (``make tools`` installs it with npm ci). Without Node or the
parser the validation tests fail in CI (CI=true) and skip elsewhere with the fix.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from rnr.core.settings import UpstreamSettings
from rnr.messaging.asyncapi import (
    DOCUMENT_PATH,
    EXAMPLE_PRODUCT,
    build_document,
    default_topology,
    main,
    render,
)
from rnr.messaging.errors import InvalidMessage
from rnr.messaging.headers import DEAD_LETTER_REASONS, PREVIOUS_ERROR_HEADER
from rnr.messaging.models import ProductMessage
from rnr.messaging.topology import DELIVERY_LIMIT

REPO_ROOT = Path(__file__).resolve().parents[2]
VALIDATOR_DIR = REPO_ROOT / "tools" / "asyncapi"
FIXTURE_PRODUCTS = REPO_ROOT / "devstack" / "replay" / "fixtures" / "products.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text())
    return loaded


def resolve(document: dict[str, Any], reference: str) -> Any:
    """The object a local ``#/a/b`` reference points at."""
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validator(document: dict[str, Any], pointer: str) -> jsonschema.Draft7Validator:
    """A validator for the schema at ``pointer``, its ``#/...`` references resolved
    against the whole document (AsyncAPI schemas are a superset of draft 7)."""
    root = {"$ref": pointer, "components": document["components"]}
    return jsonschema.Draft7Validator(root, format_checker=jsonschema.FormatChecker())


# --- generated, and never stale ---------------------------------------------------------


def test_committed_document_is_what_the_code_generates() -> None:
    assert DOCUMENT_PATH.read_text() == render(build_document()), (
        "docs/asyncapi.yaml differs from the code: run `make asyncapi` and commit it"
    )


def test_check_fails_on_a_stale_or_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert main(["--check", "--output", str(target)]) == 1
    assert "is missing: run `make asyncapi`" in capsys.readouterr().err

    assert main(["--output", str(target)]) == 0
    assert main(["--check", "--output", str(target)]) == 0

    target.write_text(target.read_text().replace("x-delivery-limit: 20", "x-delivery-limit: 5"))
    assert main(["--check", "--output", str(target)]) == 1
    assert "differs from the code: run `make asyncapi` and commit it" in capsys.readouterr().err


def test_output_does_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = render(build_document())
    monkeypatch.setenv("RABBITMQ_QUEUE", "elsewhere")
    monkeypatch.setenv("RETRY_DELAYS_SECONDS", "1,2")
    monkeypatch.setenv("RABBITMQ_QUEUE_TYPE", "classic")
    assert render(build_document()) == expected


# --- what it states ---------------------------------------------------------------------


def test_exchanges_are_durable_direct_ones(document: dict[str, Any]) -> None:
    exchanges = {
        channel["bindings"]["amqp"]["exchange"]["name"]: channel["bindings"]["amqp"]["exchange"]
        for channel in document["channels"].values()
        if channel["bindings"]["amqp"]["is"] == "routingKey"
    }
    assert set(exchanges) == {"rnr", "rnr.retry", "rnr.dlx"}
    for exchange in exchanges.values():
        assert (exchange["type"], exchange["durable"], exchange["autoDelete"]) == (
            "direct",
            True,
            False,
        )


def test_queues_state_the_arguments_they_are_declared_with(document: dict[str, Any]) -> None:
    queues = {
        channel["address"]: channel["bindings"]["amqp"]
        for channel in document["channels"].values()
        if channel["bindings"]["amqp"]["is"] == "queue"
    }
    tiers = {"rnr.products.retry.5000ms": 5000, "rnr.products.retry.30000ms": 30000}
    tiers |= {"rnr.products.retry.120000ms": 120000, "rnr.products.retry.600000ms": 600000}
    assert set(queues) == {"rnr.products", "rnr.products.dlq", *tiers}
    assert default_topology().retry_queues() == tiers
    quorum = {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert queues["rnr.products"]["x-arguments"] == quorum | {
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": "rnr.dlx",
        "x-dead-letter-routing-key": "rnr.products",
    }
    assert queues["rnr.products"]["x-bound-to"] == [
        {"exchange": "rnr", "routingKey": "rnr.products"}
    ]
    for name, ttl_ms in tiers.items():
        assert queues[name]["x-arguments"] == quorum | {
            "x-message-ttl": ttl_ms,
            "x-dead-letter-exchange": "rnr",
            "x-dead-letter-routing-key": "rnr.products",
        }
        assert queues[name]["x-bound-to"] == [{"exchange": "rnr.retry", "routingKey": name}]
    assert queues["rnr.products.dlq"]["x-arguments"] == {"x-queue-type": "quorum"}
    assert queues["rnr.products.dlq"]["x-bound-to"] == [
        {"exchange": "rnr.dlx", "routingKey": "rnr.products"}
    ]
    for binding in queues.values():
        assert binding["queue"]["durable"] is True
    retry_channel = document["channels"]["retry"]
    assert retry_channel["address"] == "rnr.products.retry.{delay}"
    assert retry_channel["parameters"]["delay"]["enum"] == [
        name.removeprefix("rnr.products.retry.") for name in tiers
    ]


def test_the_producer_publishes_persistent_mandatory_messages(document: dict[str, Any]) -> None:
    operation = document["operations"]["publishProduct"]
    assert operation["action"] == "send"
    assert resolve(document, operation["channel"]["$ref"])["address"] == "rnr.products"
    assert operation["bindings"]["amqp"]["deliveryMode"] == 2
    assert operation["bindings"]["amqp"]["mandatory"] is True
    trait = document["components"]["messageTraits"]["productMessage"]
    assert trait["contentType"] == "application/json"
    properties = trait["bindings"]["amqp"]["x-properties"]
    assert properties["examples"] == [
        {
            "message_id": EXAMPLE_PRODUCT.id,
            "correlation_id": EXAMPLE_PRODUCT.id,
            "content_type": "application/json",
            "delivery_mode": 2,
        }
    ]
    assert not list(jsonschema.Draft7Validator(properties).iter_errors(properties["examples"][0]))


def test_payload_schema_is_the_models_own(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["ProductMessage"]
    model = ProductMessage.model_json_schema()
    assert schema["properties"]["schema_version"] == model["properties"]["schema_version"]
    assert set(schema["properties"]) == set(model["properties"])
    assert schema["required"] == model["required"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"id": "../etc"},
        {"schema_version": 2},
        {"surprise": 1},
        {"url": None},
        {"product_name": "x" * 257},
    ],
    ids=["path-id", "other-version", "unknown-field", "no-url", "long-name"],
)
def test_schema_and_model_both_refuse_bad_bodies(
    document: dict[str, Any], change: dict[str, Any]
) -> None:
    body = json.loads(EXAMPLE_PRODUCT.to_body()) | change
    body = {key: value for key, value in body.items() if value is not None}
    assert list(validator(document, "#/components/schemas/ProductMessage").iter_errors(body))
    with pytest.raises(InvalidMessage):
        ProductMessage.from_body(json.dumps(body).encode())


def test_every_example_is_a_message_the_worker_accepts(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert set(messages) == {"product", "retriedProduct", "deadLetter", "redrivenProduct"}
    payload_schema = validator(document, "#/components/schemas/ProductMessage")
    for name, message in messages.items():
        (example,) = message["examples"]
        payload_schema.validate(example["payload"])
        body = json.dumps(example["payload"]).encode()
        assert ProductMessage.from_body(body) == EXAMPLE_PRODUCT
        if "headers" in message:
            validator(document, f"#/components/messages/{name}/headers").validate(
                example["headers"]
            )
        else:
            assert "headers" not in example
    headers = document["components"]["schemas"]["FailureHeaders"]["properties"]
    assert headers["x-rnr-dead-letter-reason"]["enum"] == list(DEAD_LETTER_REASONS)
    assert PREVIOUS_ERROR_HEADER in headers


def test_header_schemas_refuse_what_the_worker_refuses(document: dict[str, Any]) -> None:
    retried = validator(document, "#/components/messages/retriedProduct/headers")
    good = document["components"]["messages"]["retriedProduct"]["examples"][0]["headers"]
    retried.validate(good)
    assert list(retried.iter_errors(good | {"x-rnr-attempt": 0}))
    assert list(retried.iter_errors({k: v for k, v in good.items() if k != "x-rnr-error"}))
    dead = validator(document, "#/components/messages/deadLetter/headers")
    assert list(dead.iter_errors({"x-rnr-dead-letter-reason": "bored"}))


def test_example_is_a_real_product_of_the_replay_fixtures() -> None:
    products = {product["id"]: product for product in json.loads(FIXTURE_PRODUCTS.read_text())}
    fixture = products[EXAMPLE_PRODUCT.id]
    assert fixture["productCode"] == EXAMPLE_PRODUCT.product_code == "HML"
    assert fixture["wmoCollectiveId"] == EXAMPLE_PRODUCT.wmo_collective_id
    assert fixture["issuingOffice"] == EXAMPLE_PRODUCT.issuing_office
    assert fixture["productName"] == EXAMPLE_PRODUCT.product_name
    issued = ProductMessage.model_validate(
        json.loads(EXAMPLE_PRODUCT.to_body()) | {"issuance_time": fixture["issuanceTime"]}
    )
    assert issued == EXAMPLE_PRODUCT
    base = str(UpstreamSettings.model_fields["nws_api_url"].default).rstrip("/")
    assert str(EXAMPLE_PRODUCT.url) == f"{base}/products/{EXAMPLE_PRODUCT.id}"


# --- valid, by the AsyncAPI project's own parser ----------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="module")
def node_validator() -> list[str]:
    """The command that runs the pinned parser; missing tooling fails CI, skips elsewhere."""
    node = shutil.which("node")
    pinned = json.loads((VALIDATOR_DIR / "package.json").read_text())["dependencies"]
    installed = VALIDATOR_DIR / "node_modules" / "@asyncapi" / "parser" / "package.json"
    problem = None
    if node is None:
        problem = "node is not on PATH (Node 20 or later validates docs/asyncapi.yaml)"
    elif not installed.is_file():
        problem = "the AsyncAPI parser is not installed: run `make tools` (npm ci)"
    elif json.loads(installed.read_text())["version"] != pinned["@asyncapi/parser"]:
        problem = "the installed AsyncAPI parser is not the pinned one: run `make tools`"
    if problem:
        if _in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    return [str(node), str(VALIDATOR_DIR / "validate.mjs")]


def run_validator(command: list[str], *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO_ROOT,
    )


def test_parser_accepts_the_document(node_validator: list[str]) -> None:
    result = run_validator(node_validator, DOCUMENT_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.0.0" in result.stdout
    assert " error " not in result.stdout


def _broken_copies(document: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str]]:
    """Deliberately broken copies, each with the diagnostic text that must name it."""
    cases: dict[str, tuple[dict[str, Any], str]] = {}

    unknown_exchange_type = copy.deepcopy(document)
    unknown_exchange_type["channels"]["products"]["bindings"]["amqp"]["exchange"]["type"] = "x"
    cases["exchange-type"] = (unknown_exchange_type, "channels.products.bindings.amqp")

    no_action = copy.deepcopy(document)
    del no_action["operations"]["publishProduct"]["action"]
    cases["no-action"] = (no_action, "operations.publishProduct")

    foreign_message = copy.deepcopy(document)
    foreign_message["operations"]["publishProduct"]["messages"] = [
        {"$ref": "#/channels/retry/messages/retriedProduct"}
    ]
    cases["foreign-message"] = (foreign_message, "operations.publishProduct.messages")

    dangling = copy.deepcopy(document)
    dangling["channels"]["products"]["messages"]["product"] = {
        "$ref": "#/components/messages/missing"
    }
    cases["dangling-ref"] = (dangling, "does not exist")
    return cases


def test_parser_rejects_broken_copies(
    node_validator: list[str], document: dict[str, Any], tmp_path: Path
) -> None:
    cases = _broken_copies(document)
    files = []
    for name, (broken, _) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(broken, sort_keys=False))
        files.append(path)
    result = run_validator(node_validator, *files)
    assert result.returncode == 1, result.stdout + result.stderr
    for path, (_, expected) in zip(files, cases.values(), strict=True):
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]
        errors = [line for line in lines if " error " in line]
        assert errors, f"{path.name}: no error reported:\n{result.stdout}"
        assert any(expected in line for line in errors), f"{path.name}:\n" + "\n".join(errors)
        assert f"{path}: INVALID" in result.stderr
