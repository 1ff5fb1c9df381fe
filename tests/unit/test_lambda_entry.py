"""Unit tests for rnr.core.lambda_entry.LambdaFunction: the CLI and the AWS handler."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rnr.core.errors import ConfigurationError
from rnr.core.health import ReadinessCheck
from rnr.core.lambda_entry import LambdaFunction


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    demo_greeting: str
    demo_repeat: int = Field(1, ge=1)


@dataclass
class DemoState:
    settings: DemoSettings
    runs: Counter
    loops: list[asyncio.AbstractEventLoop] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Demo:
    """A tiny function plus what its hooks observed."""

    fail_with: Exception | None = None
    setups: int = 0
    registries: list[CollectorRegistry] = field(default_factory=list)
    function: LambdaFunction[DemoSettings, DemoState] = field(init=False)

    def __post_init__(self) -> None:
        self.function = LambdaFunction(
            "demo",
            settings_cls=DemoSettings,
            setup=self.setup,
            run=self.run,
            checks=self.checks,
        )

    def setup(self, settings: DemoSettings, registry: CollectorRegistry) -> DemoState:
        self.setups += 1
        self.registries.append(registry)
        runs = Counter("rnr_demo_runs", "Runs of the demo function", registry=registry)
        return DemoState(settings=settings, runs=runs)

    async def run(self, state: DemoState, event: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        state.loops.append(asyncio.get_running_loop())
        state.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        state.runs.inc()
        return {
            "greeting": state.settings.demo_greeting * state.settings.demo_repeat,
            "at": dt.datetime(2025, 5, 5, tzinfo=dt.UTC),
            "event": event,
        }

    def checks(self, state: DemoState) -> Mapping[str, ReadinessCheck]:
        return {}


@pytest.fixture(autouse=True)
def restore_root_logging() -> Iterator[None]:
    """LambdaFunction.state() calls setup_logging, which rewires the root logger."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("DEMO_REPEAT", raising=False)
    monkeypatch.setenv("DEMO_GREETING", "hi")
    return monkeypatch


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.strip().splitlines()]


# --------------------------------------------------------------------------------- main


def test_main_bad_config_exits_2_naming_the_variables(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("DEMO_GREETING")
    env.setenv("DEMO_REPEAT", "0")
    demo = Demo()
    assert demo.function.main(["once"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("rnr-demo: invalid configuration for DemoSettings: ")
    assert "DEMO_GREETING: Field required" in err
    assert "DEMO_REPEAT: Input should be greater than or equal to 1" in err
    assert out == ""
    assert demo.setups == 0


def test_main_success_prints_the_result_as_json(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DEMO_REPEAT", "2")
    demo = Demo()
    assert demo.function.main(["once"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    *logs, result = json_lines(out)
    assert result == {"greeting": "hihi", "at": "2025-05-05 00:00:00+00:00", "event": {}}
    finished = [line for line in logs if line.get("message") == "demo run finished"]
    assert finished
    assert finished[0]["service"] == "rnr-demo"
    assert "duration_seconds" in finished[0]


def test_main_defaults_to_once(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    demo = Demo()
    assert demo.function.main([]) == 0
    assert json_lines(capsys.readouterr().out)[-1]["greeting"] == "hi"


def test_main_failing_run_exits_1(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = Demo(fail_with=RuntimeError("upstream exploded"))
    assert demo.function.main(["once"]) == 1
    out, err = capsys.readouterr()
    assert err.strip() == "rnr-demo: run failed: upstream exploded"
    failed = [line for line in json_lines(out) if line.get("message") == "demo run failed"]
    assert failed
    assert failed[0]["level"] == "ERROR"
    assert "RuntimeError: upstream exploded" in failed[0]["exception"]


def test_main_rejects_an_unknown_command(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as caught:
        Demo().function.main(["explode"])
    assert caught.value.code == 2


# -------------------------------------------------------------------------- aws_handler


def test_aws_handler_reuses_one_loop_and_one_setup(env: pytest.MonkeyPatch) -> None:
    demo = Demo()
    function = demo.function
    try:
        first = function.aws_handler({"source": "aws.scheduler"}, object())
        second = function.aws_handler({"n": 2}, None)
        state = function.state()
        assert first["event"] == {"source": "aws.scheduler"}
        assert second["event"] == {"n": 2}
        assert len(state.loops) == 2
        assert state.loops[0] is state.loops[1]
        assert not state.loops[0].is_closed()
        assert not state.loops[0].is_running()
        assert demo.setups == 1
        assert demo.registries == [function.registry]
        assert function.registry.get_sample_value("rnr_demo_runs_total") == 2.0
    finally:
        if function._loop is not None:
            function._loop.close()


def test_aws_handler_turns_a_non_dict_event_into_an_empty_one(env: pytest.MonkeyPatch) -> None:
    function = Demo().function
    try:
        assert function.aws_handler(["not", "a", "dict"], None)["event"] == {}  # type: ignore[arg-type]
        assert function.aws_handler(None, None)["event"] == {}  # type: ignore[arg-type]
    finally:
        if function._loop is not None:
            function._loop.close()


def test_aws_handler_raises_and_the_loop_survives(env: pytest.MonkeyPatch) -> None:
    demo = Demo(fail_with=RuntimeError("transient"))
    function = demo.function
    try:
        with pytest.raises(RuntimeError, match="transient"):
            function.aws_handler({}, None)
        demo.fail_with = None
        assert function.aws_handler({}, None)["greeting"] == "hi"
        loops = function.state().loops
        assert len(loops) == 2
        assert loops[0] is loops[1]
        assert demo.setups == 1
    finally:
        if function._loop is not None:
            function._loop.close()


def test_aws_handler_bad_config_raises_configuration_error(env: pytest.MonkeyPatch) -> None:
    env.delenv("DEMO_GREETING")
    function = Demo().function
    try:
        with pytest.raises(ConfigurationError, match="DEMO_GREETING"):
            function.aws_handler({}, None)
    finally:
        if function._loop is not None:
            function._loop.close()
