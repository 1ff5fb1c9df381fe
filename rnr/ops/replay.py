"""``rnr-ops replay PRODUCT_ID``: put one product on the work queue again, by hand.

For a product that never made it (lost before the fix of a bug, withdrawn from the
DLQ by a purge, published while the worker was misconfigured) without waiting for the
producer, which will not publish it again: its Redis dedupe key says it did. The tool
reads the product from weather.gov (``NWS_API_URL``) as the producer does, builds the
same message and publishes it with a confirm; it neither reads nor writes the dedupe
keys, on purpose.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from rnr.core.identifiers import InvalidIdentifier, product_id
from rnr.core.logging import log_context
from rnr.core.settings import load_settings
from rnr.messaging.errors import PublishFailed, UnroutableMessage
from rnr.messaging.models import ProductMessage
from rnr.messaging.publisher import Publisher
from rnr.ops.broker import open_broker
from rnr.ops.cli_options import add_log_level
from rnr.ops.errors import BrokerUnavailable, OperatorError, Unavailable, UsageError
from rnr.ops.settings import ReplaySettings
from rnr.upstream.http import (
    UpstreamClient,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamUnavailable,
)
from rnr.upstream.nws import ProductSummary

logger = logging.getLogger(__name__)

# The only product type the worker routes.
ROUTED_PRODUCT_CODE = "HML"

_HELP = """\
Re-enqueue one product: read it from weather.gov (NWS_API_URL), build the message the
producer would have built, and publish it to the work exchange (RABBITMQ_EXCHANGE,
routing key RABBITMQ_QUEUE) with a confirm.

It bypasses the producer's Redis dedupe on purpose: it neither checks nor sets the
product's key (rnr:product:<id>), so it works for a product the producer already
published. The worker still reads the product's record first: a product whose record
is complete (no failed gauge) is acked as a duplicate without routing; delete the
record (products/YYYY/MM/DD/<id>.json under OUTPUT_PREFIX) to route it again.
"""


def register(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="re-enqueue one product by id (bypasses the producer's dedupe)",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument(
        "product_id", metavar="PRODUCT_ID", help="the weather.gov product id (its UUID)"
    )
    replay.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_log_level(replay)
    replay.set_defaults(handler=run_replay)


async def fetch_product(settings: ReplaySettings, wanted: str) -> ProductSummary:
    """The product's listing entry, read from its own page on weather.gov."""
    base = str(settings.nws_api_url).rstrip("/")
    url = f"{base}/products/{quote(wanted)}"
    async with UpstreamClient.open_session(
        user_agent=settings.http_user_agent, timeout_seconds=settings.http_timeout_seconds
    ) as session:
        http = UpstreamClient(
            session, retries=settings.http_retries, backoff_seconds=settings.http_backoff_seconds
        )
        try:
            payload = await http.get_json(url, accept="application/ld+json")
        except UpstreamNotFound as exc:
            raise OperatorError(
                f"weather.gov has no product {wanted} ({url} answered 404)"
            ) from exc
        except UpstreamRejected as exc:
            raise OperatorError(f"weather.gov refused the request: {exc}") from exc
        except UpstreamUnavailable as exc:
            raise Unavailable(
                f"weather.gov is unavailable: {exc}; check NWS_API_URL and this machine's "
                "network path to it, then run again"
            ) from exc
    try:
        product = ProductSummary.model_validate(payload)
    except ValidationError as exc:
        problem = str(exc).splitlines()[0]
        raise OperatorError(
            f"{url} answered with a product the pipeline cannot take: {problem}"
        ) from exc
    if product.id != wanted:
        raise OperatorError(f"{url} answered with product {product.id}, not {wanted}")
    return product


async def run_replay(args: argparse.Namespace) -> int:
    try:
        wanted = product_id(args.product_id)
    except InvalidIdentifier as exc:
        raise UsageError(str(exc)) from exc
    settings = load_settings(ReplaySettings)
    product = await fetch_product(settings, wanted)
    if product.product_code != ROUTED_PRODUCT_CODE:
        raise UsageError(
            f"product {wanted} is a {product.product_code} ({product.product_name}); the "
            f"worker routes {ROUTED_PRODUCT_CODE} products only"
        )
    message = ProductMessage.from_summary(product)
    async with open_broker(settings, name="rnr-ops replay") as broker:
        channel = await Publisher.open_channel(broker.connection)
        exchange = await broker.exchange(channel, broker.topology.exchange)
        publisher = Publisher(exchange, timeout_seconds=broker.publish_timeout_seconds)
        try:
            await publisher.publish(
                message.to_body(),
                routing_key=broker.topology.routing_key,
                message_id=wanted,
                correlation_id=wanted,
            )
        except UnroutableMessage as exc:
            raise OperatorError(str(exc)) from exc
        except PublishFailed as exc:
            raise BrokerUnavailable(f"{exc}; nothing was enqueued: run again") from exc
        await channel.close()
    outcome = {
        "product_id": wanted,
        "issuance_time": product.issuance_time.isoformat(),
        "exchange": broker.topology.exchange,
        "routing_key": broker.topology.routing_key,
    }
    with log_context(wanted, wanted):
        logger.info("product replayed", extra=outcome)
    if args.json:
        json.dump(outcome, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(
            f"enqueued product {wanted} (issued {outcome['issuance_time']}) to exchange "
            f"{outcome['exchange']!r}, routing key {outcome['routing_key']!r}"
        )
    return 0
