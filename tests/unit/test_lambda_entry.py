"""Unit tests for rnr.core.lambda_entry.LambdaFunction: the CLI, the AWS handler and
``serve``'s HTTP surface (/invoke against a real uvicorn, the bind as a real process)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import Field, SecretStr

from rnr.core.errors import ConfigurationError
from rnr.core.health import ReadinessCheck
from rnr.core.lambda_entry import (
    INVOKE_MAX_BODY_BYTES,
    LambdaFunction,
    authorization_failure,
    invoke_refusal,
    is_loopback,
    parse_event,
)
from rnr.core.settings import CommonSettings
from tests.conftest import REPO_ROOT
from tests.support.servers import free_port, http_ok, uvicorn_in_thread, wait_until
from tests.unit.test_health import raw_request

TOKEN = "unit-test-invoke-token-0123456789"
# Variables of CommonSettings: none may leak in from the developer's shell.
COMMON_VARIABLES = ("LOG_LEVEL", "HTTP_HOST", "HTTP_PORT", "INVOKE_TOKEN")


class DemoSettings(CommonSettings):
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
    for name in ("DEMO_REPEAT", *COMMON_VARIABLES):
        monkeypatch.delenv(name, raising=False)
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


# ------------------------------------------------------------------ /invoke's decisions


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.10.20.30", True),
        ("::1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.3.7", False),
        ("192.168.1.20", False),
        ("fe80::1", False),
        ("rnr.internal", False),  # a name may resolve to anything
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_invoke_is_refused_only_beyond_loopback_without_a_token() -> None:
    token = SecretStr(TOKEN)
    assert invoke_refusal("127.0.0.1", None) is None
    assert invoke_refusal("::1", None) is None
    assert invoke_refusal("0.0.0.0", token) is None
    assert invoke_refusal("10.0.3.7", token) is None
    refusal = invoke_refusal("0.0.0.0", None)
    assert refusal is not None
    assert refusal.startswith("/invoke is disabled: the server listens on 0.0.0.0")
    assert "Set INVOKE_TOKEN" in refusal


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", None),
        (f"bearer {TOKEN}", None),  # the scheme is case-insensitive
        (f"  Bearer   {TOKEN}  ", None),
        (None, ("send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer")),
        ("", ("send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer")),
        ("Bearer", ("send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer")),
        (f"Basic {TOKEN}", ("send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer")),
        (TOKEN, ("send 'Authorization: Bearer <INVOKE_TOKEN>'", "Bearer")),
        (
            f"Bearer {TOKEN}x",
            ("the bearer token does not match INVOKE_TOKEN", 'Bearer error="invalid_token"'),
        ),
        (
            f"Bearer {TOKEN[:-1]}",
            ("the bearer token does not match INVOKE_TOKEN", 'Bearer error="invalid_token"'),
        ),
        (
            "Bearer caf\u00e9",  # a latin-1 header value is compared, not an error
            ("the bearer token does not match INVOKE_TOKEN", 'Bearer error="invalid_token"'),
        ),
    ],
)
def test_authorization_failure(header: str | None, expected: tuple[str, str] | None) -> None:
    assert authorization_failure(header, SecretStr(TOKEN)) == expected


@pytest.mark.parametrize(
    ("body", "event"),
    [
        (b"", {}),
        (b" \r\n\t", {}),
        (b"{}", {}),
        (b'{"source": "devstack.local.scheduler"}', {"source": "devstack.local.scheduler"}),
        (
            '{"gauge": "Pont-l\u2019\u00c9v\u00eaque"}'.encode(),
            {"gauge": "Pont-l\u2019\u00c9v\u00eaque"},
        ),
    ],
)
def test_parse_event(body: bytes, event: dict[str, Any]) -> None:
    assert parse_event(body) == event


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff{}", "body is not UTF-8: byte 0xff at position 0"),
        (b'{"a": "\xe9"}', "body is not UTF-8: byte 0xe9 at position 7"),
        (
            b"{",
            "body is not JSON: Expecting property name enclosed in double quotes at line 1, "
            "column 2 (character 1)",
        ),
        (b'{"a": 1}\n{"b": 2}', "body is not JSON: Extra data at line 2, column 1 (character 9)"),
        (
            b"source=scheduler",
            "body is not JSON: Expecting value at line 1, column 1 (character 0)",
        ),
        (b"[1, 2]", "body must be a JSON object (the event), not an array"),
        (b'"go"', "body must be a JSON object (the event), not a string"),
        (b"42", "body must be a JSON object (the event), not a number"),
        (b"true", "body must be a JSON object (the event), not a boolean"),
        (b"null", "body must be a JSON object (the event), not null"),
        (b'{"x": NaN}', "body is not usable JSON: NaN is not JSON"),
        (b"[" * 50_000, "body is not usable JSON: it is nested too deeply"),
        (b'{"x": ' + b"9" * 5000 + b"}", "body is not usable JSON: Exceeds the limit"),
    ],
)
def test_parse_event_names_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_event(body)
    assert str(caught.value).startswith(reason)
    assert caught.value.__cause__ is None


# ------------------------------------------------------------ /invoke over real HTTP


@contextlib.contextmanager
def invoke_server(demo: Demo, host: str = "127.0.0.1") -> Iterator[str]:
    """``http_app`` as ``serve`` builds it for a server on ``host``, run by uvicorn on
    127.0.0.1 (the bind itself is tested with real processes below)."""
    with uvicorn_in_thread(demo.function.http_app(host), free_port()) as url:
        yield url


def runs(demo: Demo) -> list[dict[str, Any]]:
    return demo.function.state().events


def test_invoke_runs_the_function_with_the_body_as_its_event(env: pytest.MonkeyPatch) -> None:
    demo = Demo()
    with invoke_server(demo) as url:
        answer = httpx.post(f"{url}/invoke", json={"source": "devstack.local.scheduler"})
        empty = httpx.post(f"{url}/invoke")
    assert answer.status_code == 200, answer.text
    # Encoded as before: datetimes in ISO 8601.
    assert answer.json() == {
        "greeting": "hi",
        "at": "2025-05-05T00:00:00Z",
        "event": {"source": "devstack.local.scheduler"},
    }
    assert empty.status_code == 200
    assert empty.json()["event"] == {}
    assert runs(demo) == [{"source": "devstack.local.scheduler"}, {}]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"\xff\xfe{}", "body is not UTF-8: byte 0xff at position 0"),
        (b"{not json", "body is not JSON: Expecting property name enclosed in double quotes"),
        (b"[]", "body must be a JSON object (the event), not an array"),
        (b"[" * 30_000, "body is not usable JSON: it is nested too deeply"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_problem(
    env: pytest.MonkeyPatch, body: bytes, detail: str
) -> None:
    demo = Demo()
    with invoke_server(demo) as url:
        answer = httpx.post(
            f"{url}/invoke", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"].startswith(detail)
    assert runs(demo) == []


def test_the_body_limit_is_64_kib() -> None:
    assert INVOKE_MAX_BODY_BYTES == 64 * 1024


def test_a_body_at_the_limit_is_run_and_one_byte_more_is_a_413(env: pytest.MonkeyPatch) -> None:
    event = b'{"pad": ""}'
    at_limit = event[:-1] + b" " * (INVOKE_MAX_BODY_BYTES - len(event)) + event[-1:]
    assert len(at_limit) == INVOKE_MAX_BODY_BYTES
    demo = Demo()
    with invoke_server(demo) as url:
        accepted = httpx.post(f"{url}/invoke", content=at_limit)
        refused = httpx.post(f"{url}/invoke", content=at_limit + b" ")
    assert accepted.status_code == 200, accepted.text
    assert refused.status_code == 413
    assert refused.json() == {
        "detail": f"the /invoke body is larger than the limit of {INVOKE_MAX_BODY_BYTES} bytes"
    }
    assert runs(demo) == [{"pad": ""}]


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    env: pytest.MonkeyPatch,
) -> None:
    demo = Demo()
    with invoke_server(demo) as url:
        # Headers only: a server that waited for the body would never answer.
        declared = INVOKE_MAX_BODY_BYTES + 1
        answer = raw_request(
            url, f"POST /invoke HTTP/1.1\nHost: demo\nContent-Length: {declared}\n"
        )
    assert answer.status == 413
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "detail": f"the /invoke body is larger than the limit of {INVOKE_MAX_BODY_BYTES} bytes"
    }
    assert runs(demo) == []


def test_a_chunked_body_is_read_only_up_to_the_limit(env: pytest.MonkeyPatch) -> None:
    sent = 0

    def fifty_mebibytes() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(50 * 256):
            sent += 4096
            yield b" " * 4096

    demo = Demo()
    with invoke_server(demo) as url:
        answer = httpx.post(f"{url}/invoke", content=fifty_mebibytes(), timeout=30)
    assert answer.status_code == 413
    assert answer.headers["connection"] == "close"
    assert "larger than the limit of 65536 bytes" in answer.json()["detail"]
    assert sent < 4 * 1024 * 1024  # the server hung up long before the end
    assert runs(demo) == []


def test_with_a_token_invoke_requires_it(env: pytest.MonkeyPatch) -> None:
    env.setenv("INVOKE_TOKEN", TOKEN)
    demo = Demo()
    with invoke_server(demo, host="0.0.0.0") as url:
        missing = httpx.post(f"{url}/invoke", json={})
        wrong = httpx.post(f"{url}/invoke", json={}, headers={"Authorization": "Bearer guess"})
        basic = httpx.post(f"{url}/invoke", json={}, auth=("user", TOKEN))
        # Refused before the body is read: no 413 for an unauthenticated caller.
        large = httpx.post(f"{url}/invoke", content=b" " * (INVOKE_MAX_BODY_BYTES + 1))
        right = httpx.post(
            f"{url}/invoke", json={"n": 1}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
    for refused in (missing, wrong, basic, large):
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {"detail": "send 'Authorization: Bearer <INVOKE_TOKEN>'"}
    assert wrong.json() == {"detail": "the bearer token does not match INVOKE_TOKEN"}
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert right.status_code == 200, right.text
    assert runs(demo) == [{"n": 1}]


def test_beyond_loopback_without_a_token_invoke_is_a_403(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = Demo()
    with invoke_server(demo, host="0.0.0.0") as url:
        first = httpx.post(f"{url}/invoke", json={})
        second = httpx.post(f"{url}/invoke", json={}, headers={"Authorization": "Bearer x"})
        healthz = httpx.get(f"{url}/healthz")
    refusal = invoke_refusal("0.0.0.0", None)
    for answer in (first, second):
        assert answer.status_code == 403
        assert answer.json() == {"detail": refusal}
    assert healthz.status_code == 200  # only /invoke is closed
    warnings = [line for line in json_lines(capsys.readouterr().out) if line["level"] == "WARNING"]
    assert [(line["message"], line["host"]) for line in warnings] == [(refusal, "0.0.0.0")]
    assert runs(demo) == []


def test_a_failed_run_is_a_json_500_without_a_traceback(env: pytest.MonkeyPatch) -> None:
    demo = Demo(fail_with=RuntimeError("secret detail from deep inside"))
    with invoke_server(demo) as url:
        answer = httpx.post(f"{url}/invoke", json={})
    assert answer.status_code == 500
    assert answer.json() == {"detail": "demo run failed (RuntimeError); see the service log"}
    assert "Traceback" not in answer.text and "secret detail" not in answer.text


# ---------------------------------------------------------- serve's bind, as a process

SERVE_DEMO = (
    "import sys; from tests.unit.test_lambda_entry import Demo; "
    "sys.exit(Demo().function.main(sys.argv[1:]))"
)


def listening_addresses(port: int) -> set[str]:
    """Addresses with a TCP socket listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        table = Path("/proc/net") / name
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, words))
    return found


@contextlib.contextmanager
def serving(argv: list[str], env: Mapping[str, str], port: int, tmp_path: Path) -> Iterator[str]:
    """``python -m services.<name> serve`` of the demo function, until SIGTERM."""
    log = tmp_path / f"serve-{port}.log"
    clean = {k: v for k, v in os.environ.items() if k not in COMMON_VARIABLES}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE_DEMO, "serve", *argv],
            env={**clean, "DEMO_GREETING": "hi", **env},
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(
                lambda: process.poll() is not None or http_ok(f"{url}/healthz"),
                timeout=30,
                what=url,
            )
            assert process.poll() is None, log.read_text()
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0, log.read_text()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_serve_listens_on_loopback_by_default(tmp_path: Path) -> None:
    port = free_port()
    with serving(["--port", str(port)], {}, port, tmp_path) as url:
        assert listening_addresses(port) == {"127.0.0.1"}
        assert httpx.post(f"{url}/invoke", json={}).status_code == 200


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_serve_listens_on_http_host_and_closes_invoke_without_a_token(tmp_path: Path) -> None:
    port = free_port()
    env = {"HTTP_HOST": "0.0.0.0", "HTTP_PORT": str(port)}
    with serving([], env, port, tmp_path) as url:
        assert listening_addresses(port) == {"0.0.0.0"}
        # Reached through 127.0.0.1, but the server listens beyond it.
        answer = httpx.post(f"{url}/invoke", json={})
    assert answer.status_code == 403
    assert "Set INVOKE_TOKEN" in answer.json()["detail"]
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert log.count("/invoke is disabled") == 1  # warned once, at start-up


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_serve_beyond_loopback_with_a_token_and_the_host_flag_wins(tmp_path: Path) -> None:
    port = free_port()
    env = {"HTTP_HOST": "0.0.0.0", "INVOKE_TOKEN": TOKEN}
    with serving(["--port", str(port)], env, port, tmp_path) as url:
        assert listening_addresses(port) == {"0.0.0.0"}
        assert httpx.post(f"{url}/invoke", json={}).status_code == 401
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(f"{url}/invoke", json={}, headers=authorized).status_code == 200
    port = free_port()
    with serving(["--host", "127.0.0.1", "--port", str(port)], env, port, tmp_path):
        assert listening_addresses(port) == {"127.0.0.1"}
