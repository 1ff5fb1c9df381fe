"""devstack.brokers: the private RabbitMQ node and Redis that make run and the tests use.

They start on free ports, answer (AMQP with quorum queues, the management API, Redis),
stop without leaving a process or a file behind, and never touch what already runs on
this machine (a broker on 5672, a Redis on 6379). Redis restarts empty on its port, as the
chaos suite has it do. Without the server programs, the error names the package to install.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aio_pika
import httpx
import psutil
import pytest
import redis

from devstack import brokers
from devstack.brokers import MissingServer, private_brokers

MACHINE_PORTS = (5672, 15672, 6379, 4369)  # the usual broker, its API, Redis, epmd


def listeners(ports: tuple[int, ...]) -> dict[int, set[tuple[int | None, float | None]]]:
    """Who listens on each port: (pid, start time) where this user may see them."""
    found: dict[int, set[tuple[int | None, float | None]]] = {port: set() for port in ports}
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port in found:
            started = None
            if connection.pid is not None:
                try:
                    started = psutil.Process(connection.pid).create_time()
                except psutil.NoSuchProcess:
                    continue
            found[connection.laddr.port].add((connection.pid, started))
    return found


def gone(pids: set[int], within: float = 15) -> set[int]:
    """The pids still alive after ``within`` s; a zombie waiting for init counts as gone."""
    deadline = time.monotonic() + within
    while True:
        alive = set()
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


async def declare_a_quorum_queue(url: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            "rnr-probe", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
        declared = await channel.declare_queue("rnr-probe", passive=True)
        return declared.declaration_result.message_count


@pytest.mark.timeout(180)
def test_they_start_on_free_ports_answer_and_stop_leaving_nothing_behind() -> None:
    before = listeners(MACHINE_PORTS)
    with private_brokers() as started:
        assert started.rabbitmq is not None and started.redis is not None
        ports = {
            started.rabbitmq.amqp_port,
            started.rabbitmq.management_port,
            started.rabbitmq.dist_port,
            started.rabbitmq.epmd_port,
            started.redis.port,
        }
        assert len(ports) == 5 and not ports & set(MACHINE_PORTS)
        assert started.amqp_url == f"amqp://guest:guest@127.0.0.1:{started.rabbitmq.amqp_port}/"

        assert asyncio.run(declare_a_quorum_queue(started.amqp_url)) == 1
        overview = httpx.get(f"{started.management_url}/api/overview", auth=("guest", "guest"))
        assert overview.status_code == 200, overview.text
        assert overview.json()["node"] == started.rabbitmq.node
        assert redis.Redis.from_url(started.redis_url).ping()

        during = listeners(MACHINE_PORTS)
        pids = started.rabbitmq.pids() | started.redis.pids()
        folder = started.rabbitmq.dir.parent
        assert len(pids) >= 3  # epmd, the node (and its helpers), redis-server
        assert folder.is_dir()
    after = listeners(MACHINE_PORTS)

    # Whatever listened on the machine's ports was the same process throughout.
    assert before == during == after
    assert gone(pids) == set()
    assert not folder.exists()
    for port in ports:
        assert not brokers.port_open(port), port


def test_only_the_servers_asked_for_start() -> None:
    with private_brokers(rabbitmq=False) as started:
        assert started.rabbitmq is None and started.amqp_url is None
        assert started.management_url is None
        assert started.redis_url is not None
        assert redis.Redis.from_url(started.redis_url).ping()


def test_a_redis_restart_comes_back_empty_on_the_same_port() -> None:
    with private_brokers(rabbitmq=False) as started:
        assert started.redis is not None and started.redis_url is not None
        client = redis.Redis.from_url(started.redis_url)
        client.set("rnr-probe", "1")
        port, first = started.redis.port, started.redis.pids()
        started.redis.restart(down_seconds=0.5)
        assert started.redis.port == port and started.redis_url == started.redis.url
        assert started.redis.pids().isdisjoint(first)
        assert client.get("rnr-probe") is None  # SHUTDOWN NOSAVE: nothing was kept
        client.close()


@pytest.fixture
def no_servers_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(brokers, "SBIN_DIRS", ())


@pytest.mark.usefixtures("no_servers_installed")
def test_without_rabbitmq_installed_the_error_names_the_package() -> None:
    with pytest.raises(MissingServer) as raised, private_brokers():
        pytest.fail("started without rabbitmq-server")
    message = str(raised.value)
    assert raised.value.server == "RabbitMQ"
    assert "rabbitmq-server is not on PATH" in message
    assert "sudo apt-get install rabbitmq-server (Debian/Ubuntu)" in message
    assert "brew install rabbitmq (macOS)" in message


@pytest.mark.usefixtures("no_servers_installed")
def test_without_redis_installed_the_error_names_the_package() -> None:
    with pytest.raises(MissingServer) as raised, private_brokers(rabbitmq=False):
        pytest.fail("started without redis-server")
    assert raised.value.server == "Redis"
    assert "sudo apt-get install redis-server (Debian/Ubuntu)" in str(raised.value)
    assert "brew install redis (macOS)" in str(raised.value)


def test_the_session_node_restarts_its_app_without_touching_the_machines_broker(
    rabbitmq_node: brokers.RabbitMQNode,
) -> None:
    before = listeners(MACHINE_PORTS)
    rabbitmq_node.stop_app()
    assert not brokers.port_open(rabbitmq_node.amqp_port)
    during = listeners(MACHINE_PORTS)
    rabbitmq_node.start_app()
    assert brokers.port_open(rabbitmq_node.amqp_port)
    assert brokers.port_open(rabbitmq_node.management_port)
    assert before == during == listeners(MACHINE_PORTS)
    assert rabbitmq_node.node in rabbitmq_node.ctl("eval", "node().")
