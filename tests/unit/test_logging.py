"""Unit tests for rnr.core.logging: JSON lines, correlation ids, context isolation."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import pathlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from rnr.core.logging import JsonFormatter, current_correlation_id, log_context, setup_logging

Lines = Callable[[], list[dict]]


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, Lines]]:
    """A private logger writing through JsonFormatter into a buffer (the root is untouched)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("rnr-test"))
    logger = logging.getLogger(f"rnr.test.logging.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def lines() -> list[dict]:
        raw = stream.getvalue().splitlines()
        return [json.loads(line) for line in raw]

    yield logger, lines
    logger.removeHandler(handler)


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in ("aiormq", "aio_pika", "botocore")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def test_one_json_object_with_the_standard_keys(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    logger.warning("hello %s", "world")
    [entry] = lines()
    assert entry["level"] == "WARNING"
    assert entry["service"] == "rnr-test"
    assert entry["logger"] == logger.name
    assert entry["message"] == "hello world"
    assert entry["correlation_id"] is None
    assert entry["message_id"] is None
    assert "exception" not in entry
    stamp = dt.datetime.fromisoformat(entry["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)
    assert before <= stamp <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    # milliseconds: "....HH:MM:SS.mmm+00:00"
    assert len(entry["timestamp"].split(".")[1]) == len("123+00:00")


def test_a_multi_line_message_stays_on_one_line(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    logger.info("first\nsecond")
    [entry] = lines()
    assert entry["message"] == "first\nsecond"


def test_extras_are_top_level_keys(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    when = dt.datetime(2025, 5, 5, 14, tzinfo=dt.UTC)
    logger.info(
        "processed",
        extra={
            "product_id": "p-1",
            "lids": ["A", "B"],
            "count": 3,
            "when": when,
            "path": pathlib.PurePosixPath("/a/b"),
        },
    )
    [entry] = lines()
    assert entry["product_id"] == "p-1"
    assert entry["lids"] == ["A", "B"]
    assert entry["count"] == 3
    assert entry["when"] == str(when)  # not JSON: rendered with str()
    assert entry["path"] == "/a/b"


def test_standard_record_attributes_are_not_dumped(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    logger.info("plain")
    [entry] = lines()
    assert set(entry) == {
        "timestamp",
        "level",
        "service",
        "logger",
        "message",
        "correlation_id",
        "message_id",
    }


def test_exception_text_is_included(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed", extra={"product_id": "p-9"})
    [entry] = lines()
    assert entry["level"] == "ERROR"
    assert entry["message"] == "it failed"
    assert entry["product_id"] == "p-9"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].rstrip().endswith("ValueError: boom")


def test_log_context_tags_lines_and_restores(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    with log_context("corr-1", "msg-1"):
        assert current_correlation_id() == "corr-1"
        logger.info("inside")
    logger.info("after")
    inside, after = lines()
    assert (inside["correlation_id"], inside["message_id"]) == ("corr-1", "msg-1")
    assert (after["correlation_id"], after["message_id"]) == (None, None)
    assert current_correlation_id() is None


def test_log_context_nests(capture: tuple[logging.Logger, Lines]) -> None:
    logger, lines = capture
    with log_context("outer", "outer-msg"):
        logger.info("a")
        with log_context("inner"):
            logger.info("b")
            with log_context(None):
                logger.info("c")
            logger.info("d")
        logger.info("e")
    ids = [(entry["correlation_id"], entry["message_id"]) for entry in lines()]
    assert ids == [
        ("outer", "outer-msg"),
        ("inner", None),
        (None, None),
        ("inner", None),
        ("outer", "outer-msg"),
    ]


def test_log_context_restores_after_an_exception() -> None:
    with pytest.raises(RuntimeError), log_context("doomed", "m"):
        raise RuntimeError("x")
    assert current_correlation_id() is None


async def test_log_context_is_isolated_across_tasks(
    capture: tuple[logging.Logger, Lines],
) -> None:
    logger, lines = capture
    products = ("p1", "p2", "p3")
    # every task is inside its own context at once, and so is the parent
    barrier = asyncio.Barrier(len(products) + 1)

    async def work(product: str) -> None:
        with log_context(product, f"msg-{product}"):
            logger.info("start")
            await barrier.wait()
            logger.info("end")

    with log_context("parent", "parent-msg"):
        tasks = [asyncio.create_task(work(p)) for p in products]
        await barrier.wait()
        logger.info("parent while tasks wait")
        await asyncio.gather(*tasks)
        logger.info("parent after")

    entries = lines()
    for entry in entries:
        if entry["message"] in {"start", "end"}:
            assert entry["message_id"] == f"msg-{entry['correlation_id']}"
    by_task = {(e["correlation_id"], e["message"]) for e in entries}
    for product in ("p1", "p2", "p3"):
        assert {(product, "start"), (product, "end")} <= by_task
    parents = [e for e in entries if e["message"].startswith("parent")]
    assert [(e["correlation_id"], e["message_id"]) for e in parents] == [
        ("parent", "parent-msg"),
        ("parent", "parent-msg"),
    ]


async def test_a_task_inherits_the_context_it_was_created_in(
    capture: tuple[logging.Logger, Lines],
) -> None:
    logger, lines = capture

    async def child() -> None:
        logger.info("child")

    with log_context("corr-parent", "m-parent"):
        task = asyncio.create_task(child())
    await task  # runs after the block has exited, with the copied context
    [entry] = lines()
    assert (entry["correlation_id"], entry["message_id"]) == ("corr-parent", "m-parent")


def test_setup_logging_routes_the_root_to_stdout_as_json(
    restore_root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("rnr-svc", "debug")
    setup_logging("rnr-svc", "debug")  # idempotent: still one handler
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, JsonFormatter)
    assert root.level == logging.DEBUG
    assert logging.getLogger("aio_pika").level == logging.WARNING
    assert logging.getLogger("botocore").level == logging.WARNING

    with log_context("corr-7"):
        logging.getLogger("rnr.some.module").debug("detail", extra={"k": 1})
    out = capsys.readouterr().out.strip().splitlines()
    entry = json.loads(out[-1])
    assert entry["service"] == "rnr-svc"
    assert entry["logger"] == "rnr.some.module"
    assert entry["correlation_id"] == "corr-7"
    assert entry["k"] == 1
