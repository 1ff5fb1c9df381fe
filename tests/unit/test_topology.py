"""Unit tests for the pure parts of rnr.messaging.topology: names and retry tiers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnr.core.settings import BrokerSettings
from rnr.messaging.topology import DELIVERY_LIMIT, Topology, _queue_arguments, queue_type_for

DEFAULT_DELAYS = (5.0, 30.0, 120.0, 600.0)


def topology(delays: tuple[float, ...] = DEFAULT_DELAYS, queue_type: str = "quorum") -> Topology:
    return Topology(
        exchange="rnr",
        queue="rnr.products",
        queue_type=queue_type,  # type: ignore[arg-type]
        retry_delays_seconds=delays,
    )


def test_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RABBITMQ_ENDPOINT", "RABBITMQ_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    settings = BrokerSettings(
        rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/",  # type: ignore[arg-type]
        rabbitmq_exchange="ex",
        rabbitmq_queue="work",
        rabbitmq_queue_type="classic",
        retry_delays_seconds=(1.0, 2.0),
    )
    assert Topology.from_settings(settings) == Topology("ex", "work", "classic", (1.0, 2.0))


def test_names() -> None:
    t = topology()
    assert t.routing_key == "rnr.products"
    assert t.retry_exchange == "rnr.retry"
    assert t.dead_letter_exchange == "rnr.dlx"
    assert t.dead_letter_queue == "rnr.products.dlq"


def test_names_follow_the_configured_exchange_and_queue() -> None:
    t = Topology("staging", "staging.work", "classic", (1.0,))
    assert t.routing_key == "staging.work"
    assert t.retry_exchange == "staging.retry"
    assert t.dead_letter_exchange == "staging.dlx"
    assert t.dead_letter_queue == "staging.work.dlq"
    assert t.retry_queue(1) == "staging.work.retry.1000ms"


def test_topology_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        topology().queue = "other"  # type: ignore[misc]


def test_retry_queues_carry_the_delay_in_ms_in_order() -> None:
    assert topology().retry_queues() == {
        "rnr.products.retry.5000ms": 5000,
        "rnr.products.retry.30000ms": 30000,
        "rnr.products.retry.120000ms": 120000,
        "rnr.products.retry.600000ms": 600000,
    }
    assert list(topology().retry_queues().values()) == [5000, 30000, 120000, 600000]


def test_fractional_delays_round_to_whole_ms() -> None:
    assert topology((0.1, 0.5, 1.25, 2.0004)).retry_queues() == {
        "rnr.products.retry.100ms": 100,
        "rnr.products.retry.500ms": 500,
        "rnr.products.retry.1250ms": 1250,
        "rnr.products.retry.2000ms": 2000,
    }


@pytest.mark.parametrize(
    ("attempt", "tier"),
    [
        (1, "rnr.products.retry.5000ms"),
        (2, "rnr.products.retry.30000ms"),
        (3, "rnr.products.retry.120000ms"),
        (4, "rnr.products.retry.600000ms"),
        (5, "rnr.products.retry.600000ms"),
        (6, "rnr.products.retry.600000ms"),
        (50, "rnr.products.retry.600000ms"),
    ],
)
def test_retry_queue_by_attempt(attempt: int, tier: str) -> None:
    assert topology().retry_queue(attempt) == tier


def test_single_tier_takes_every_attempt() -> None:
    t = topology((42.0,))
    assert {t.retry_queue(attempt) for attempt in range(1, 10)} == {"rnr.products.retry.42000ms"}


def test_changing_delays_changes_tier_names() -> None:
    old = set(topology((5.0, 30.0)).retry_queues())
    new = set(topology((5.0, 60.0)).retry_queues())
    assert old & new == {"rnr.products.retry.5000ms"}
    assert "rnr.products.retry.60000ms" in new


@settings(max_examples=200, deadline=None)
@given(
    delays=st.lists(
        st.floats(min_value=0.001, max_value=7 * 24 * 3600, allow_nan=False), min_size=1, max_size=8
    ),
    attempt=st.integers(min_value=1, max_value=1000),
)
def test_every_attempt_lands_in_a_declared_tier(delays: list[float], attempt: int) -> None:
    t = topology(tuple(delays))
    tiers = t.retry_queues()
    name = t.retry_queue(attempt)
    assert name in tiers
    expected_delay = delays[min(attempt, len(delays)) - 1]
    assert tiers[name] == round(expected_delay * 1000)
    assert name == f"rnr.products.retry.{tiers[name]}ms"


def test_quorum_queue_arguments() -> None:
    args = _queue_arguments(topology(), **{"x-message-ttl": 5000})
    assert args == {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-message-ttl": 5000,
    }


def test_classic_queue_arguments() -> None:
    args = _queue_arguments(topology(queue_type="classic"), **{"x-dead-letter-exchange": "rnr"})
    assert args == {"x-queue-type": "classic", "x-dead-letter-exchange": "rnr"}


def test_delivery_limit_is_sane() -> None:
    assert 1 < DELIVERY_LIMIT <= 100


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("3.7.28", "classic"),
        ("3.8.0", "quorum"),
        ("3.10.8", "quorum"),
        ("3.13.7", "quorum"),
        ("4.2.0", "quorum"),
        ("", "quorum"),
        ("4.x-custom", "quorum"),
    ],
)
def test_queue_type_follows_the_broker_version(version: str, expected: str) -> None:
    assert queue_type_for(version) == expected
