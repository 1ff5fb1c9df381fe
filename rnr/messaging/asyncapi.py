"""The message contract as an AsyncAPI 3.0 document (``docs/asyncapi.yaml``), built from
the code that defines it.

A team integrating with the queue, or an operator at 3 a.m., should not have to read
Python to learn what a message looks like, which properties and headers it carries, or
which arguments a queue must be declared with (a declaration with other arguments fails
with PRECONDITION_FAILED). Written by hand, such a document drifts from the code; built
from the code, it cannot, and ``--check`` (run by tests/unit/test_asyncapi.py) fails
when the committed file is stale.

The topology is recorded, not restated: :func:`declare_topology` runs against a channel
that only writes down what it is asked to declare, so the exchanges, queues, queue
arguments and bindings in the document are those every service declares. The payload
schema is ``ProductMessage``'s own JSON Schema, the headers come from
``rnr.messaging.headers``, the tiers from ``BrokerSettings``' defaults.

    python -m rnr.messaging.asyncapi            # write docs/asyncapi.yaml (make asyncapi)
    python -m rnr.messaging.asyncapi --check    # exit 1 when the committed file differs
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

from aio_pika.abc import AbstractChannel

from rnr.core.identifiers import PRODUCT_ID_PATTERN
from rnr.core.settings import BrokerSettings
from rnr.messaging.consumer import MAX_ATTEMPT_HEADER
from rnr.messaging.headers import (
    ATTEMPT_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_REASONS,
    ERROR_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    PREVIOUS_ERROR_HEADER,
)
from rnr.messaging.models import MAX_BODY_BYTES, SCHEMA_VERSION, ProductMessage
from rnr.messaging.topology import DELIVERY_LIMIT, Topology, declare_topology

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
PERSISTENT = 2  # AMQP delivery mode
CONTENT_TYPE = "application/json"
_HEADER_COMMENT = (
    "# The message contract of rnr-pipeline, generated from rnr/messaging by\n"
    "# `make asyncapi` (python -m rnr.messaging.asyncapi): do not edit by hand.\n"
)

# A real HML product from the replay fixtures (devstack/replay/fixtures/products.json):
# the Fort Worth RFC's product of 2025-05-05 14Z, with the gauge HPDT2 in it.
EXAMPLE_PRODUCT = ProductMessage(
    id="508e35f6-a6ee-5cea-9361-6f4b79520bda",
    url="https://api.weather.gov/products/508e35f6-a6ee-5cea-9361-6f4b79520bda",
    wmo_collective_id="SRUS54",
    issuing_office="KFWR",
    issuance_time=dt.datetime(2025, 5, 5, 14, 0, tzinfo=dt.UTC),
    product_code="HML",
    product_name="Hydrologic Markup Language",
)
_EXAMPLE_ERROR = f"GET {EXAMPLE_PRODUCT.url} failed 4 times, last: HTTP 503"


# --- the topology, as declare_topology declares it --------------------------------------


@dataclasses.dataclass(frozen=True)
class DeclaredExchange:
    name: str
    type: str
    durable: bool
    auto_delete: bool


@dataclasses.dataclass(frozen=True)
class DeclaredQueue:
    name: str
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict[str, Any]
    bound_to: list[tuple[str, str]]  # (exchange, routing key)


@dataclasses.dataclass
class Declarations:
    """What a run of :func:`declare_topology` asked the broker for, in its order."""

    exchanges: dict[str, DeclaredExchange] = dataclasses.field(default_factory=dict)
    queues: dict[str, DeclaredQueue] = dataclasses.field(default_factory=dict)


class _RecordedExchange:
    def __init__(self, name: str) -> None:
        self.name = name


class _RecordedQueue:
    def __init__(self, name: str, bound_to: list[tuple[str, str]]) -> None:
        self.name = name
        self._bound_to = bound_to

    async def bind(self, exchange: _RecordedExchange, routing_key: str) -> None:
        self._bound_to.append((exchange.name, routing_key))


class _RecordingChannel:
    """Answers the calls :func:`declare_topology` makes, at once, and writes them down.

    Its signatures are aio-pika's; a call it does not know (the topology code changed)
    fails here loudly instead of leaving something out of the document.
    """

    def __init__(self) -> None:
        self.declarations = Declarations()

    async def declare_exchange(
        self, name: str, exchange_type: Any, *, durable: bool = False, auto_delete: bool = False
    ) -> _RecordedExchange:
        kind = str(getattr(exchange_type, "value", exchange_type))
        self.declarations.exchanges[name] = DeclaredExchange(name, kind, durable, auto_delete)
        return _RecordedExchange(name)

    async def declare_queue(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> _RecordedQueue:
        queue = DeclaredQueue(name, durable, exclusive, auto_delete, dict(arguments or {}), [])
        self.declarations.queues[name] = queue
        return _RecordedQueue(name, queue.bound_to)


def _run_at_once(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits: usable inside and outside an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("declare_topology waited on I/O: the recording channel missed a call")


def record_declarations(topology: Topology) -> Declarations:
    if topology.queue_type == "auto":
        raise ValueError("give the queue type to document (quorum or classic), not auto")
    channel = _RecordingChannel()
    _run_at_once(declare_topology(cast(AbstractChannel, channel), topology))
    return channel.declarations


def _setting_default(name: str) -> Any:
    return BrokerSettings.model_fields[name].default


def default_topology() -> Topology:
    """The deployed topology: every broker setting at its default, never the environment.

    ``RABBITMQ_QUEUE_TYPE=auto`` (the default) declares quorum queues on every RabbitMQ
    from 3.8 (Amazon MQ runs 3.13), so the document shows quorum queues.
    """
    return Topology(
        exchange=_setting_default("rabbitmq_exchange"),
        queue=_setting_default("rabbitmq_queue"),
        queue_type="quorum",
        retry_delays_seconds=_setting_default("retry_delays_seconds"),
    )


# --- channels ---------------------------------------------------------------------------


def _exchange_binding(exchange: DeclaredExchange) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {
                "name": exchange.name,
                "type": exchange.type,
                "durable": exchange.durable,
                "autoDelete": exchange.auto_delete,
                "vhost": "/",
            },
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _queue_binding(queue: DeclaredQueue) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "queue",
            "queue": {
                "name": queue.name,
                "durable": queue.durable,
                "exclusive": queue.exclusive,
                "autoDelete": queue.auto_delete,
                "vhost": "/",
            },
            # Not in the AMQP binding's schema: the arguments a client must declare the
            # queue with, and the exchanges and routing keys it is bound to.
            "x-arguments": dict(sorted(queue.arguments.items())),
            "x-bound-to": [
                {"exchange": exchange, "routingKey": key} for exchange, key in queue.bound_to
            ],
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _messages(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/messages/{name}"} for name in names}


def _tier_channel_id(delay_ms: int) -> str:
    return f"retryQueue{delay_ms}ms"


def _channels(topology: Topology, declared: Declarations) -> dict[str, Any]:
    exchanges, queues = declared.exchanges, declared.queues
    tiers = topology.retry_queues()
    channels: dict[str, Any] = {
        "products": {
            "address": topology.routing_key,
            "title": f"Exchange {topology.exchange}, routing key {topology.routing_key}",
            "description": (
                "Where new products enter: the producer publishes here. A retried message "
                "returns here when its tier's TTL expires (the broker dead-letters it to "
                "this exchange), and the operators' redrive sends dead letters back here."
            ),
            "messages": _messages("product", "retriedProduct", "redrivenProduct"),
            "bindings": _exchange_binding(exchanges[topology.exchange]),
        },
        "productsQueue": {
            "address": topology.queue,
            "title": f"Queue {topology.queue}",
            "description": (
                f"The work queue the workers consume. A message delivered {DELIVERY_LIMIT} "
                "times without an ack (a worker killed by it again and again) is "
                f"dead-lettered by the broker to {topology.dead_letter_exchange} "
                "(x-delivery-limit): it then carries RabbitMQ's x-death headers and no "
                f"{DEAD_LETTER_REASON_HEADER}."
            ),
            "messages": _messages("product", "retriedProduct", "redrivenProduct"),
            "bindings": _queue_binding(queues[topology.queue]),
        },
        "retry": {
            "address": f"{topology.queue}.retry.{{delay}}",
            "title": f"Exchange {topology.retry_exchange}, one routing key per delay tier",
            "description": (
                "A transient failure is republished here, to the tier of the attempt that "
                "failed (attempt n waits in tier n; the last tier takes every later one)."
            ),
            "parameters": {
                "delay": {
                    "enum": [name.removeprefix(f"{topology.queue}.retry.") for name in tiers],
                    "description": "The tier's delay in milliseconds (RETRY_DELAYS_SECONDS).",
                }
            },
            "messages": _messages("retriedProduct"),
            "bindings": _exchange_binding(exchanges[topology.retry_exchange]),
        },
    }
    for name, delay_ms in tiers.items():
        channels[_tier_channel_id(delay_ms)] = {
            "address": name,
            "title": f"Queue {name}",
            "description": (
                f"Retry tier: a message waits {delay_ms} ms here (x-message-ttl; nobody "
                f"consumes it), then the broker dead-letters it to {topology.exchange} "
                f"with routing key {topology.routing_key}."
            ),
            "messages": _messages("retriedProduct"),
            "bindings": _queue_binding(queues[name]),
        }
    channels["deadLetters"] = {
        "address": topology.routing_key,
        "title": f"Exchange {topology.dead_letter_exchange}, routing key {topology.routing_key}",
        "description": "Messages that failed permanently or exhausted their attempts.",
        "messages": _messages("deadLetter"),
        "bindings": _exchange_binding(exchanges[topology.dead_letter_exchange]),
    }
    channels["deadLetterQueue"] = {
        "address": topology.dead_letter_queue,
        "title": f"Queue {topology.dead_letter_queue}",
        "description": "Dead letters wait here for an operator: nothing consumes them.",
        "messages": _messages("deadLetter"),
        "bindings": _queue_binding(queues[topology.dead_letter_queue]),
    }
    return channels


# --- operations -------------------------------------------------------------------------


def _publish_binding() -> dict[str, Any]:
    return {
        "amqp": {
            "deliveryMode": PERSISTENT,
            "mandatory": True,
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _consume_binding() -> dict[str, Any]:
    return {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}}


def _operation(
    action: str, channel: str, messages: Sequence[str], summary: str, description: str
) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "description": description,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
        "bindings": _publish_binding() if action == "send" else _consume_binding(),
    }


def _operations() -> dict[str, Any]:
    confirmed = "Persistent, mandatory, and awaited until the broker confirms it."
    return {
        "publishProduct": _operation(
            "send",
            "products",
            ["product"],
            "The producer publishes each new HML product once.",
            f"{confirmed} An unconfirmed publish releases the product's Redis claim, so "
            "the next run publishes it again.",
        ),
        "consumeProducts": _operation(
            "receive",
            "productsQueue",
            ["product", "retriedProduct", "redrivenProduct"],
            "A worker routes the product's gauges and writes its outputs.",
            "Acked only after S3 accepted the outputs. A failure is republished (retry "
            "tier or dead-letter exchange) with a confirm before the original is acked.",
        ),
        "retryProduct": _operation(
            "send",
            "retry",
            ["retriedProduct"],
            "A worker sends a transiently failed product to wait in a delay tier.",
            confirmed,
        ),
        "deadLetterProduct": _operation(
            "send",
            "deadLetters",
            ["deadLetter"],
            "A worker dead-letters a product that failed permanently or ran out of attempts.",
            confirmed,
        ),
        "redriveDeadLetter": _operation(
            "send",
            "products",
            ["redrivenProduct"],
            "An operator sends dead letters back to the work queue (python -m rnr.ops dlq).",
            f"{confirmed} The dead letter is acked only after the confirm.",
        ),
        "readDeadLetters": _operation(
            "receive",
            "deadLetterQueue",
            ["deadLetter"],
            "An operator inspects, redrives or purges dead letters (python -m rnr.ops dlq).",
            "Nothing else consumes the dead-letter queue.",
        ),
    }


# --- messages, headers and the payload schema -------------------------------------------


def _header_schemas() -> dict[str, Any]:
    max_attempts = _setting_default("max_attempts")
    return {
        ATTEMPT_HEADER: {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ATTEMPT_HEADER,
            "description": (
                "On a retried message, the attempt its next delivery is; on a dead letter, "
                "the attempt that failed. Absent means 1. A string of digits is read too; "
                "any other value dead-letters the message as invalid_header. "
                f"MAX_ATTEMPTS (default {max_attempts}) attempts in all."
            ),
        },
        ERROR_HEADER: {"type": "string", "description": "What failed, for a human."},
        ERROR_TYPE_HEADER: {
            "type": "string",
            "description": "The exception's class name, e.g. UpstreamUnavailable.",
        },
        FAILED_AT_HEADER: {
            "type": "string",
            "format": "date-time",
            "description": "When the attempt failed (UTC, ISO 8601, to the second).",
        },
        DEAD_LETTER_REASON_HEADER: {
            "type": "string",
            "enum": list(DEAD_LETTER_REASONS),
            "description": (
                "Why the worker dead-lettered the message. Absent on a message the broker "
                "dead-lettered by itself (delivery limit): see x-death."
            ),
        },
        PREVIOUS_ERROR_HEADER: {
            "type": "string",
            "description": (
                "On a redriven message: the error it was dead-lettered with. The redrive "
                f"drops {ATTEMPT_HEADER} (attempt 1 again), the other failure headers and "
                "RabbitMQ's x-death; every other header travels on."
            ),
        },
    }


FAILURE_HEADERS_SCHEMA = "FailureHeaders"


def _failure_headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "The x-rnr-* headers a message carries once it has failed. RabbitMQ adds its "
            "own x-death (and x-first-death-*, x-last-death-*) when it dead-letters a "
            "message (a tier's TTL, the delivery limit); any other header travels on."
        ),
        "properties": _header_schemas(),
        "additionalProperties": True,
    }


def _headers(*required: str, description: str) -> dict[str, Any]:
    reference = {"$ref": f"#/components/schemas/{FAILURE_HEADERS_SCHEMA}"}
    if not required:
        return {"description": description, "allOf": [reference]}
    return {"description": description, "allOf": [reference, {"required": list(required)}]}


def _properties_schema(example: ProductMessage) -> dict[str, Any]:
    """The AMQP basic properties every message carries (the publisher sets them)."""
    return {
        "type": "object",
        "required": ["message_id", "correlation_id", "content_type", "delivery_mode"],
        "properties": {
            "message_id": {"type": "string", "description": "The product id (payload id)."},
            "correlation_id": {
                "type": "string",
                "description": "The product id too: it names the product in every log line.",
            },
            "content_type": {"const": CONTENT_TYPE},
            "delivery_mode": {"const": PERSISTENT, "description": "Persistent."},
        },
        "examples": [
            {
                "message_id": example.id,
                "correlation_id": example.id,
                "content_type": CONTENT_TYPE,
                "delivery_mode": PERSISTENT,
            }
        ],
    }


PRODUCT_TRAIT = "productMessage"


def _product_trait() -> dict[str, Any]:
    """What every message of the pipeline shares: the JSON body and the AMQP properties,
    which the AMQP binding has no field for (hence ``x-properties``)."""
    return {
        "contentType": CONTENT_TYPE,
        "correlationId": {
            "location": "$message.payload#/id",
            "description": "AMQP correlation_id and message_id are the payload's id.",
        },
        "bindings": {
            "amqp": {
                "bindingVersion": AMQP_BINDING_VERSION,
                "x-properties": _properties_schema(EXAMPLE_PRODUCT),
            }
        },
    }


def _message(
    name: str, title: str, summary: str, headers: dict[str, Any] | None, example: dict[str, Any]
) -> dict[str, Any]:
    message: dict[str, Any] = {"name": name, "title": title, "summary": summary}
    if headers is not None:
        message["headers"] = headers
    message["payload"] = {"$ref": "#/components/schemas/ProductMessage"}
    message["traits"] = [{"$ref": f"#/components/messageTraits/{PRODUCT_TRAIT}"}]
    message["examples"] = [example]
    return message


def _example(name: str, summary: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    example: dict[str, Any] = {"name": name, "summary": summary}
    if headers is not None:
        example["headers"] = headers
    example["payload"] = json.loads(EXAMPLE_PRODUCT.to_body())
    return example


def _messages_components() -> dict[str, Any]:
    failure = {
        ERROR_HEADER: _EXAMPLE_ERROR,
        ERROR_TYPE_HEADER: "UpstreamUnavailable",
        FAILED_AT_HEADER: "2025-05-05T14:05:02+00:00",
    }
    retried = {ATTEMPT_HEADER: 2, **failure}
    dead = {ATTEMPT_HEADER: 5, **failure, DEAD_LETTER_REASON_HEADER: "attempts_exhausted"}
    failure_headers = [ATTEMPT_HEADER, ERROR_HEADER, ERROR_TYPE_HEADER, FAILED_AT_HEADER]
    return {
        "product": _message(
            "ProductMessage",
            "A new product",
            "As the producer publishes it: no x-rnr-* headers.",
            None,
            _example("hml-kfwr", "An HML product of the West Gulf RFC, issued by KFWR."),
        ),
        "retriedProduct": _message(
            "RetriedProductMessage",
            "A product on its way to another attempt",
            "The same body and properties, with the failure in x-rnr-* headers.",
            _headers(*failure_headers, description="Set by the worker when it retries."),
            _example("hml-kfwr-retried", "Its first attempt failed; attempt 2 is next.", retried),
        ),
        "deadLetter": _message(
            "DeadLetteredProductMessage",
            "A product that will not be retried",
            "The same body and properties, with the last failure and the reason.",
            _headers(description="Set by the worker when it dead-letters a message."),
            _example("hml-kfwr-dead", "Its fifth and last attempt failed.", dead),
        ),
        "redrivenProduct": _message(
            "RedrivenProductMessage",
            "A dead letter sent back to the work queue",
            "The same body and properties; the old error kept, the attempts reset.",
            _headers(PREVIOUS_ERROR_HEADER, description="Set by the operators' redrive."),
            _example(
                "hml-kfwr-redriven",
                "Redriven after the upstream recovered.",
                {PREVIOUS_ERROR_HEADER: _EXAMPLE_ERROR},
            ),
        ),
    }


def payload_schemas() -> dict[str, Any]:
    """``ProductMessage``'s JSON Schema under components/schemas, nested models beside it.

    The product id's pattern is checked by a validator pydantic cannot express in the
    schema; it is added from ``rnr.core.identifiers`` so that a consumer sees it.
    """
    schema = ProductMessage.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    schema["properties"]["id"].setdefault("pattern", PRODUCT_ID_PATTERN)
    schema["description"] = (
        f"{schema.get('description', '')} At most {MAX_BODY_BYTES} bytes of UTF-8 JSON; "
        "issuance_time lies between 1990 and 2200 UTC. A body the worker cannot read, or "
        "of another schema_version, is dead-lettered as permanent."
    ).strip()
    return {"ProductMessage": schema, **nested}


# --- the document -----------------------------------------------------------------------


def _info(topology: Topology) -> dict[str, Any]:
    return {
        "title": "rnr-pipeline messages",
        "version": str(SCHEMA_VERSION),
        "description": (
            "The producer publishes one message per new NWS HML product to the "
            f"{topology.exchange} exchange; workers consume {topology.queue}, retry "
            f"transient failures through the delay tiers of {topology.retry_exchange} and "
            f"dead-letter the rest to {topology.dead_letter_queue}. info.version is the "
            "payload's schema_version. Queue arguments are in each queue binding's "
            "x-arguments: declare a queue with exactly these, or the broker refuses it. "
            "RABBITMQ_QUEUE_TYPE=classic (for a RabbitMQ older than 3.8) declares the same "
            "queues as classic ones, without the quorum-only arguments. Generated by "
            "`make asyncapi` from rnr/messaging."
        ),
        "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
    }


def _servers() -> dict[str, Any]:
    credentials = [{"$ref": "#/components/securitySchemes/brokerCredentials"}]
    return {
        "amazonMq": {
            "host": "{endpoint}",
            "protocol": "amqps",
            "protocolVersion": "0-9-1",
            "description": "Amazon MQ for RabbitMQ in AWS (RABBITMQ_ENDPOINT).",
            "variables": {"endpoint": {"description": "host:5671 of RABBITMQ_ENDPOINT"}},
            "security": credentials,
        },
        "local": {
            "host": "127.0.0.1:5672",
            "protocol": "amqp",
            "protocolVersion": "0-9-1",
            "description": "make run and docker compose (RABBITMQ_URL).",
            "security": credentials,
        },
    }


def build_document(topology: Topology | None = None) -> dict[str, Any]:
    """The AsyncAPI document, as plain data, for ``topology`` (the deployed one if None)."""
    topology = topology or default_topology()
    declared = record_declarations(topology)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(topology),
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": _channels(topology, declared),
        "operations": _operations(),
        "components": {
            "messages": _messages_components(),
            "schemas": {
                **payload_schemas(),
                FAILURE_HEADERS_SCHEMA: _failure_headers_schema(),
            },
            "messageTraits": {PRODUCT_TRAIT: _product_trait()},
            "securitySchemes": {
                "brokerCredentials": {
                    "type": "userPassword",
                    "description": (
                        "In AWS the Secrets Manager secret RABBITMQ_SECRET_ARN holds them; "
                        "locally they are RABBITMQ_URL's."
                    ),
                }
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    """YAML in the document's own order (stable: built from the code, no timestamps)."""
    # A development dependency (no stubs installed): only generating the document needs it.
    import yaml  # type: ignore[import-untyped]

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # every value written out in place: no &id001 anchors

    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=96)
    return _HEADER_COMMENT + body


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnr.messaging.asyncapi", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the code"
    )
    args = parser.parse_args(argv)
    expected = render(build_document())
    if args.check:
        current = args.output.read_text() if args.output.exists() else None
        if current == expected:
            print(f"{args.output} is up to date")
            return 0
        state = "is missing" if current is None else "differs from the code"
        print(f"{args.output} {state}: run `make asyncapi` and commit it", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(expected)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
