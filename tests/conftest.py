"""Shared fixtures: the real RabbitMQ and Redis, moto in server mode, the replay server.

Markers come from the folder a test lives in (tests/unit -> ``unit`` ...), so
``pytest -m unit`` picks the fast subset. RabbitMQ and Redis must be running; a test
session without them fails at once with the command that starts them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.broker import BrokerFixture
from tests.support.servers import free_port, tcp_reachable, uvicorn_in_thread

# moto needs credentials to sign with; never real ones.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")

REPO_ROOT = Path(__file__).resolve().parent.parent
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

START_HINTS = {
    5672: "RabbitMQ: rabbitmq-server -detached && rabbitmqctl await_startup",
    6379: "Redis: redis-server --daemonize yes --port 6379 --save '' --appendonly no",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in {"unit", "static", "integration", "e2e"}:
            item.add_marker(getattr(pytest.mark, parts[0]))


def _require(port: int) -> None:
    if not tcp_reachable("127.0.0.1", port):
        pytest.fail(f"nothing listens on 127.0.0.1:{port}; start it: {START_HINTS[port]}")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    _require(5672)
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    _require(6379)
    return REDIS_URL


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass
class Replay:
    """The replay server standing in for weather.gov and NWPS, with its admin API."""

    url: str

    @property
    def nws_api_url(self) -> str:
        return self.url

    @property
    def nwps_api_url(self) -> str:
        return f"{self.url}/nwps/v1"

    def reset(self) -> None:
        httpx.post(f"{self.url}/_admin/reset").raise_for_status()

    def fault(self, path: str, **fault: object) -> None:
        httpx.post(f"{self.url}/_admin/faults", json={"path": path, **fault}).raise_for_status()

    def add_products(self, count: int, **options: object) -> list[dict[str, str]]:
        answer = httpx.post(f"{self.url}/_admin/products", json={"count": count, **options})
        answer.raise_for_status()
        return answer.json()["products"]

    def listing(self) -> list[dict[str, str]]:
        return httpx.get(f"{self.url}/products", params={"type": "HML"}).json()["@graph"]

    def product(self, product_id: str) -> dict[str, str]:
        answer = httpx.get(f"{self.url}/products/{product_id}")
        answer.raise_for_status()
        return answer.json()

    def requests(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_admin/requests").json()


@pytest.fixture(scope="session")
def replay_server() -> Iterator[Replay]:
    from rnr.replay.server import create_app

    with uvicorn_in_thread(create_app(), free_port()) as url:
        yield Replay(url)


@pytest.fixture
def replay(replay_server: Replay) -> Iterator[Replay]:
    replay_server.reset()
    yield replay_server
    replay_server.reset()


@pytest.fixture
def unique() -> str:
    """A short unique suffix so tests never share queues, keys or buckets."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def bucket(moto_endpoint: str, unique: str) -> AsyncIterator[str]:
    import aioboto3

    name = f"rnr-test-{unique}"
    session = aioboto3.Session(region_name="us-east-1")
    async with session.client("s3", endpoint_url=moto_endpoint) as s3:
        await s3.create_bucket(Bucket=name)
        await s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name


@pytest.fixture
async def broker(rabbitmq_url: str, unique: str) -> AsyncIterator[BrokerFixture]:
    test_broker = BrokerFixture(rabbitmq_url, unique)
    yield test_broker
    await test_broker.delete_all()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared design folder (conformance cases), from RNR_SHARED_DIR.

    A user's clone has no such folder: the tests that need it skip. CI sets it.
    """
    value = os.environ.get("RNR_SHARED_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip(
            "RNR_SHARED_DIR is not set to the shared folder with conformance cases "
            "(.ci/run and make test set it when ../shared exists)"
        )
    return Path(value)


@pytest.fixture
def sample_hydrofabric(bucket: str, moto_endpoint: str) -> str:
    """The project's small hydrofabric uploaded to ``bucket``, as the bootstrap does;
    returns the HYDROFABRIC_LOCATION naming it."""
    import boto3

    from rnr.local.bootstrap import (
        SAMPLE_HYDROFABRIC,
        SAMPLE_HYDROFABRIC_LOCATION,
        SAMPLE_HYDROFABRIC_PREFIX,
    )

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    for path in sorted(p for p in SAMPLE_HYDROFABRIC.rglob("*") if p.is_file()):
        relative = path.relative_to(SAMPLE_HYDROFABRIC).as_posix()
        s3.put_object(
            Bucket=bucket, Key=f"{SAMPLE_HYDROFABRIC_PREFIX}/{relative}", Body=path.read_bytes()
        )
    return SAMPLE_HYDROFABRIC_LOCATION
