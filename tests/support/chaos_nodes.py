"""Private servers for the chaos suite: a RabbitMQ node, a Redis and a moto server of its own.

The machine's RabbitMQ (node ``rabbit@localhost`` on 5672) and Redis (6379) serve every
other test and the developer's own work: the chaos suite never stops, restarts or
reconfigures them. Everything it breaks, it started itself, in a temporary folder and on
free ports, through mirakuru executors (start, wait until the port answers, stop the
whole process group and anything else carrying the executor's environment marker).

The RabbitMQ node is fully apart from the shared one:

* its own node name (``rnr-chaos-<random>@localhost``), AMQP port and distribution port;
* its own epmd on a free port (``ERL_EPMD_PORT``), so stopping it can never unregister
  the shared node, and the CLI tools find the private node only through it;
* its own ``rabbitmq-env.conf`` (``RABBITMQ_CONF_ENV_FILE``, empty), so the system one
  (``NODENAME=rabbit@localhost``) is never read, and its own ``rabbitmq.conf``, since the
  system one pins ``listeners.tcp.local = 127.0.0.1:5672``;
* its own Erlang cookie (``HOME`` points at a private home), data, logs and plugin list.

Run as root, the node and its CLI calls run as the ``rabbitmq`` user, who owns the folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mirakuru import TCPExecutor

from tests.support.servers import free_port, tcp_reachable, wait_until

RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_USER = "rabbitmq"


def require_tool(path: str) -> str:
    """The tool's path; skips without it (a user's machine), fails in CI (CI=true)."""
    found = shutil.which(path)
    if found is None:
        message = (
            f"{path} is not installed: the chaos suite starts private RabbitMQ and Redis "
            "servers of its own (apt-get install rabbitmq-server redis-server)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _run_as() -> pwd.struct_passwd | None:
    """The account the node runs as: ``rabbitmq`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RABBITMQ_USER)
    except KeyError:
        return None


class PrivateRabbitMQ:
    """A single RabbitMQ node of the suite's own; ``stop_app``/``start_app`` at will."""

    def __init__(self, base_dir: Path) -> None:
        self.dir = base_dir / "rabbitmq"
        self.node = f"rnr-chaos-{secrets.token_hex(4)}@localhost"
        self.amqp_port, self.dist_port, self.epmd_port = distinct_free_ports(3)
        self._account = _run_as()
        self._epmd: TCPExecutor | None = None
        self._server: TCPExecutor | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def server_log(self) -> Path:
        return self.dir / "server.out"

    def log_tail(self, lines: int = 20) -> str:
        """The end of the node's own log file."""
        return tail(self.dir / "log" / f"{self.node}.log", lines)

    def _prepare(self) -> None:
        home = self.dir / "home"
        for folder in (home, self.dir / "mnesia", self.dir / "log"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\nloopback_users.guest = true\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        if self._account is not None:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def env(self) -> dict[str, str]:
        """What the server and every CLI call need to find this node and only it."""
        return {
            **os.environ,
            "HOME": str(self.dir / "home"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _popen_kwargs(self) -> dict[str, object]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def start(self) -> PrivateRabbitMQ:
        require_tool("rabbitmq-server")
        epmd = require_tool("epmd")
        self._prepare()
        self._epmd = TCPExecutor(
            [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            host="127.0.0.1",
            port=self.epmd_port,
            timeout=15,
            stdout=(self.dir / "epmd.out").open("w"),
            stderr=subprocess.STDOUT,
        ).start()
        self._server = TCPExecutor(
            [str(RABBITMQ_SCRIPTS / "rabbitmq-server")],
            host="127.0.0.1",
            port=self.amqp_port,
            timeout=120,
            envvars=self.env(),
            cwd=str(self.dir),
            stdout=self.server_log.open("w"),
            stderr=subprocess.STDOUT,
            popen_kwargs=self._popen_kwargs(),
        )
        self._server.start()
        self.ctl("await_startup", timeout=120)
        return self

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <this node> ...``; raises with the tool's output on failure."""
        finished = subprocess.run(
            [str(RABBITMQ_SCRIPTS / "rabbitmqctl"), "-q", "-n", self.node, *args],
            env=self.env(),
            cwd=str(self.dir),
            capture_output=True,
            text=True,
            timeout=timeout,
            **self._popen_kwargs(),  # type: ignore[arg-type]
        )
        if finished.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.node} failed "
                f"({finished.returncode}): {finished.stdout}{finished.stderr}"
            )
        return finished.stdout

    def stop_app(self) -> None:
        self.ctl("stop_app")
        wait_until(
            lambda: not tcp_reachable("127.0.0.1", self.amqp_port),
            timeout=15,
            what="the private node's AMQP listener to close",
        )

    def start_app(self) -> None:
        self.ctl("start_app", timeout=120)
        self.ctl("await_startup", timeout=120)

    def stop(self) -> None:
        try:
            if self._server is not None and self._server.running():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self.ctl("shutdown", timeout=60)
                self._server.stop()
        finally:
            if self._server is not None:
                self._server.kill()
            if self._epmd is not None:
                self._epmd.kill()


class PrivateRedis:
    """A throw-away redis-server; :meth:`restart` loses every key, as a failover may."""

    def __init__(self, base_dir: Path) -> None:
        self.dir = base_dir / "redis"
        self.port = free_port()
        self._executor: TCPExecutor | None = None
        self._log = self.dir / "redis.out"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        server = require_tool("redis-server")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._executor = TCPExecutor(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            host="127.0.0.1",
            port=self.port,
            timeout=20,
            stdout=self._log.open("a"),
            stderr=subprocess.STDOUT,
        )
        self._executor.start()
        return self

    def shutdown_nosave(self) -> None:
        """``SHUTDOWN NOSAVE``: the server exits at once and every key is gone.

        Sent over a plain socket: a client library would retry the connection the
        server closes as it goes, with backoff, for seconds.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)  # the server closes the connection: nothing comes back
        assert self._executor is not None and self._executor.process is not None
        self._executor.process.wait(timeout=15)
        self._executor.stop()

    def restart(self, down_seconds: float) -> None:
        self.shutdown_nosave()
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.kill()


class MotoProcess:
    """moto in server mode as its own process (S3 for the worker's inputs and outputs)."""

    def __init__(self, base_dir: Path) -> None:
        self.dir = base_dir / "moto"
        self.port = free_port()
        self._executor: TCPExecutor | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._executor = TCPExecutor(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            host="127.0.0.1",
            port=self.port,
            timeout=30,
            stdout=(self.dir / "moto.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        self._executor.start()
        return self

    def stop(self) -> None:
        if self._executor is not None:
            self._executor.kill()
