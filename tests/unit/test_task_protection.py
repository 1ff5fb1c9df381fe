"""Scale-in protection against a fake ECS agent endpoint: held while busy, released when
idle, one call per busy spell, never failing a message, a no-op outside ECS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from services.worker.task_protection import TaskProtection
from tests.support.ecs_agent import FakeEcsAgent, fake_ecs_agent
from tests.support.servers import wait_until_async


@pytest.fixture
def agent() -> Iterator[FakeEcsAgent]:
    with fake_ecs_agent() as running:
        yield running


def protection_for(agent: FakeEcsAgent, **options: object) -> TaskProtection:
    return TaskProtection(agent.uri, expires_minutes=15, release_grace_seconds=0.05, **options)


async def test_outside_ecs_the_processor_is_unchanged() -> None:
    async def processor(_: str) -> None:
        return None

    protection = TaskProtection(None, expires_minutes=15)
    assert not protection.enabled
    assert protection.guard(processor) is processor
    await protection.close()


async def test_protected_before_work_starts_and_released_once_idle(agent: FakeEcsAgent) -> None:
    registry = CollectorRegistry()
    protection = protection_for(agent, registry=registry)
    seen_while_working: list[list[bool]] = []

    async def processor(_: str) -> None:
        seen_while_working.append(agent.states)
        assert registry.get_sample_value("rnr_worker_scale_in_protected") == 1

    await protection.guard(processor)("product")
    await wait_until_async(lambda: len(agent.calls) == 2, within=10, what="release")
    assert seen_while_working == [[True]]
    assert agent.calls == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 15},
        {"ProtectionEnabled": False},
    ]
    assert registry.get_sample_value("rnr_worker_scale_in_protected") == 0
    await protection.close()


async def test_overlapping_messages_share_one_protection(agent: FakeEcsAgent) -> None:
    protection = protection_for(agent)
    gate = asyncio.Event()

    async def processor(_: str) -> None:
        await gate.wait()

    guarded = protection.guard(processor)
    work = [asyncio.create_task(guarded(str(i))) for i in range(5)]
    await wait_until_async(lambda: agent.states == [True], within=10, what="protection")
    await asyncio.sleep(0.2)  # well past the grace: still busy, so still protected
    assert agent.states == [True]
    gate.set()
    await asyncio.gather(*work)
    await wait_until_async(lambda: agent.states == [True, False], within=10, what="release")
    await protection.close()
    assert agent.states == [True, False]


async def test_back_to_back_messages_within_the_grace_do_not_toggle(
    agent: FakeEcsAgent,
) -> None:
    protection = TaskProtection(agent.uri, expires_minutes=15, release_grace_seconds=5)

    async def processor(_: str) -> None:
        return None

    guarded = protection.guard(processor)
    for i in range(3):
        await guarded(str(i))
    assert agent.states == [True]
    await protection.close()  # shutdown releases at once
    assert agent.states == [True, False]


async def test_a_failing_agent_never_fails_the_message(
    agent: FakeEcsAgent, caplog: pytest.LogCaptureFixture
) -> None:
    agent.status = 500
    protection = protection_for(agent)
    done: list[str] = []

    async def processor(item: str) -> None:
        done.append(item)

    await protection.guard(processor)("a")
    await protection.guard(processor)("b")
    assert done == ["a", "b"]
    # One attempt, then quiet for a while rather than delaying every message.
    assert agent.states == [True]
    assert "could not change ECS scale-in protection" in caplog.text
    await protection.close()


async def test_an_exception_in_the_processor_still_releases(agent: FakeEcsAgent) -> None:
    protection = protection_for(agent)

    async def processor(_: str) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await protection.guard(processor)("x")
    await wait_until_async(lambda: agent.states == [True, False], within=10, what="release")
    await protection.close()
