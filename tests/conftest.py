"""Shared fixtures: real RabbitMQ and Redis, moto in server mode, the replay server.

Markers come from the folder a test lives in (tests/unit -> ``unit`` ...), so
``pytest -m unit`` picks the fast subset.

RabbitMQ (with its management API) and Redis are the session's own: the first test that
needs one starts both through ``devstack.brokers`` in a temporary folder on free ports
(a RabbitMQ node takes 5-10 s to boot, once per session), and the session stops them at
its end. Nothing needs to run beforehand, and a broker already on this machine (5672,
6379) is never touched. To use running servers instead, set ``TEST_RABBITMQ_URL``
(with ``TEST_RABBITMQ_MANAGEMENT_URL`` when its API is not on ``http://<host>:15672``)
and/or ``TEST_REDIS_URL``; the tests that run ``rabbitmqctl`` or restart the broker then
skip, since they only ever touch a node the session owns. Each test still uses names of its own
(queues, keys, buckets), so sessions may share servers.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.broker import BrokerFixture
from tests.support.servers import free_port, tcp_reachable, uvicorn_in_thread

if TYPE_CHECKING:
    from devstack.brokers import RabbitMQNode

# moto needs credentials to sign with; never real ones.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in {"unit", "static", "integration", "e2e", "chaos"}:
            item.add_marker(getattr(pytest.mark, parts[0]))


@dataclass(frozen=True)
class SessionBrokers:
    """The servers this session's tests use; ``node`` is None for a broker it does not own."""

    rabbitmq_url: str
    management_url: str
    redis_url: str
    node: RabbitMQNode | None


def _external(variable: str, default_port: int) -> str | None:
    """The running server ``variable`` names, checked to answer; None when it is unset."""
    url = os.environ.get(variable)
    if not url:
        return None
    parts = urlsplit(url)
    if not tcp_reachable(parts.hostname or "127.0.0.1", parts.port or default_port):
        pytest.fail(f"{variable}={url}: nothing answers there; start it, or unset {variable}")
    return url


@pytest.fixture(scope="session")
def session_brokers() -> Iterator[SessionBrokers]:
    from devstack.brokers import MissingServer, private_brokers

    external_amqp = _external("TEST_RABBITMQ_URL", 5672)
    external_redis = _external("TEST_REDIS_URL", 6379)
    with contextlib.ExitStack() as stack:
        try:
            started = stack.enter_context(
                private_brokers(rabbitmq=external_amqp is None, redis=external_redis is None)
            )
        except MissingServer as exc:
            pytest.fail(f"{exc}; or point TEST_RABBITMQ_URL and TEST_REDIS_URL at running servers")
        management = started.management_url
        if external_amqp:  # the API's address as the autoscaler derives it, unless given
            host = urlsplit(external_amqp).hostname
            management = os.environ.get("TEST_RABBITMQ_MANAGEMENT_URL", f"http://{host}:15672")
        yield SessionBrokers(
            rabbitmq_url=external_amqp or started.amqp_url or "",
            management_url=management or "",
            redis_url=external_redis or started.redis_url or "",
            node=started.rabbitmq,
        )


@pytest.fixture(scope="session")
def rabbitmq_url(session_brokers: SessionBrokers) -> str:
    return session_brokers.rabbitmq_url


@pytest.fixture(scope="session")
def rabbitmq_management_url(session_brokers: SessionBrokers) -> str:
    """The management HTTP API of ``rabbitmq_url``'s broker (no credentials in it)."""
    return session_brokers.management_url


@pytest.fixture(scope="session")
def redis_url(session_brokers: SessionBrokers) -> str:
    return session_brokers.redis_url


@pytest.fixture(scope="session")
def rabbitmq_node(session_brokers: SessionBrokers) -> RabbitMQNode:
    """The session's own RabbitMQ node, for tests that run ``rabbitmqctl`` against it or
    stop and start it; they skip when ``TEST_RABBITMQ_URL`` names someone else's broker."""
    if session_brokers.node is None:
        pytest.skip("TEST_RABBITMQ_URL names a broker this session does not own")
    return session_brokers.node


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
    from devstack.replay.server import create_app

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
async def broker(
    rabbitmq_url: str, rabbitmq_management_url: str, unique: str
) -> AsyncIterator[BrokerFixture]:
    test_broker = BrokerFixture(rabbitmq_url, unique, rabbitmq_management_url)
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

    from devstack.local.bootstrap import (
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
