"""Private RabbitMQ and Redis servers for ``make run`` and the tests.

:func:`private_brokers` starts a RabbitMQ node (management plugin on) and a Redis of their
own, in a temporary folder and on free ports of 127.0.0.1, yields their URLs and stops
them afterwards, leaving no process and no file behind. Whatever already runs on this
machine, a broker on 5672 included, is never contacted, stopped or reconfigured:

* the node has its own name (``rnr-<random>@localhost``), AMQP, management and
  distribution ports, and its own epmd on a free port (``ERL_EPMD_PORT``), so it never
  registers with, or starts, the machine's epmd on 4369;
* it reads none of the machine's configuration: its own ``rabbitmq-env.conf`` (empty:
  Debian's sets ``NODENAME``), ``rabbitmq.conf`` (Debian's pins ``127.0.0.1:5672``) and
  enabled-plugins file, and its own Erlang cookie (``HOME``), data and logs;
* run as root (CI), the node and its CLI calls run as the ``rabbitmq`` user, who then
  owns the node's folder; otherwise everything runs as the caller.

The processes are mirakuru executors: each starts in a process group of its own, counts
as started once its ports answer, and is stopped with SIGTERM (RabbitMQ shuts down
cleanly on it), then SIGKILL, along with every process that inherited its environment
marker (the Erlang VM's helpers).

The fault suite (tests/chaos) breaks a pair of its own: :meth:`RabbitMQNode.stop_app` and
:meth:`RabbitMQNode.start_app` take the broker away and bring it back, and
:meth:`RedisServer.restart` shuts Redis down without saving and starts it empty on the
same port.

``python -m devstack.brokers`` starts a pair, prints the variables to export and keeps
them up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirakuru import Executor, TCPExecutor
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, TimeoutExpired

__all__ = [
    "BrokerStartError",
    "Brokers",
    "MissingServer",
    "RabbitMQNode",
    "RedisServer",
    "private_brokers",
]

HOST = "127.0.0.1"
# The private node's only user; RabbitMQ lets guest in from the loopback interface only.
USERNAME = "guest"
PASSWORD = "guest"
# Debian and Homebrew install the servers in sbin folders, which a user's PATH may lack.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin")
RABBITMQ_USER = "rabbitmq"
RABBITMQ_START_SECONDS = 120
REDIS_START_SECONDS = 20
# The management API refreshes its figures this often (the default is 5 s).
STATISTICS_INTERVAL_MS = 1000


class MissingServer(RuntimeError):
    """A server program is not installed; the message names the package to install."""

    def __init__(self, message: str, server: str) -> None:
        super().__init__(message)
        self.server = server  # "RabbitMQ" or "Redis"


class BrokerStartError(RuntimeError):
    """A server did not start; the message ends with its log."""


@dataclass(frozen=True)
class _Package:
    server: str
    executable: str
    debian: str
    homebrew: str

    def missing(self) -> MissingServer:
        return MissingServer(
            f"{self.server} is not installed ({self.executable} is not on PATH). Install it: "
            f"sudo apt-get install {self.debian} (Debian/Ubuntu) or brew install "
            f"{self.homebrew} (macOS)",
            self.server,
        )


RABBITMQ_PACKAGE = _Package("RabbitMQ", "rabbitmq-server", "rabbitmq-server", "rabbitmq")
REDIS_PACKAGE = _Package("Redis", "redis-server", "redis-server", "redis")


def find_program(name: str) -> str | None:
    """``name`` on PATH or in one of the usual sbin folders."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which(name, path=search)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on now (the kernel's choice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _ListeningExecutor(Executor):
    """Started once every one of ``ports`` accepts connections; refuses to start when
    one of them is already taken (by anything)."""

    def __init__(self, command: list[str], ports: list[int], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.ports = ports

    def pre_start_check(self) -> bool:
        return any(port_open(port) for port in self.ports)

    def after_start_check(self) -> bool:
        return all(port_open(port) for port in self.ports)


def _rabbitmq_account() -> pwd.struct_passwd | None:
    """The account the node runs as: ``rabbitmq`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RABBITMQ_USER)
    except KeyError:
        return None


def _rabbitmq_scripts() -> Path:
    """The folder of the real ``rabbitmq-server`` and ``rabbitmqctl`` scripts.

    Debian links /usr/sbin/rabbitmq-server to a wrapper that switches to the rabbitmq
    user and drops the environment; the scripts beside the wrapper take it as given.
    Homebrew links the scripts themselves.
    """
    found = find_program(RABBITMQ_PACKAGE.executable)
    if found is None:
        raise RABBITMQ_PACKAGE.missing()
    folder = Path(found).resolve().parent
    if not (folder / "rabbitmq-server").is_file():  # a wrapper elsewhere
        folder = Path(found).parent
    return folder


def _epmd() -> str:
    found = find_program("epmd")
    if found is None and (erl := find_program("erl")):
        beside = Path(erl).resolve().parent / "epmd"  # Erlang's own bin folder
        found = str(beside) if beside.is_file() else None
    if found is None:
        raise MissingServer(
            "epmd (Erlang's port mapper, which RabbitMQ needs) is not on PATH: reinstall "
            "RabbitMQ with its Erlang runtime: sudo apt-get install rabbitmq-server "
            "(Debian/Ubuntu) or brew install rabbitmq (macOS)",
            "RabbitMQ",
        )
    return found


class RabbitMQNode:
    """A single RabbitMQ node of our own under ``base_dir``, with the management plugin."""

    def __init__(self, base_dir: Path, ports: list[int] | None = None) -> None:
        self.dir = base_dir / "rabbitmq"
        self.node = f"rnr-{secrets.token_hex(4)}@localhost"
        ports = ports or free_ports(4)
        self.amqp_port, self.management_port, self.dist_port, self.epmd_port = ports
        self._account = _rabbitmq_account()
        self._scripts = _rabbitmq_scripts()
        self._epmd_program = _epmd()
        self._epmd: TCPExecutor | None = None
        self._server: _ListeningExecutor | None = None

    @property
    def amqp_url(self) -> str:
        return f"amqp://{USERNAME}:{PASSWORD}@{HOST}:{self.amqp_port}/"

    @property
    def management_url(self) -> str:
        return f"http://{HOST}:{self.management_port}"

    @property
    def server_log(self) -> Path:
        return self.dir / "server.out"

    @property
    def node_log(self) -> Path:
        return self.dir / "log" / f"{self.node}.log"

    def pids(self) -> set[int]:
        """The server's process group and every process carrying its marker."""
        from mirakuru.base_env import processes_with_env

        found: set[int] = set()
        for executor in (self._server, self._epmd):
            if executor is not None:
                if executor.process is not None:
                    found.add(executor.process.pid)
                found |= processes_with_env("mirakuru_uuid", executor._uuid)
        return found

    def _prepare(self) -> None:
        home = self.dir / "home"
        for folder in (home, self.dir / "mnesia", self.dir / "log"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {HOST}:{self.amqp_port}\n"
            "loopback_users.guest = true\n"
            f"management.tcp.ip = {HOST}\n"
            f"management.tcp.port = {self.management_port}\n"
            f"collect_statistics_interval = {STATISTICS_INTERVAL_MS}\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        if self._account is not None:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def env(self) -> dict[str, str]:
        """What the server and every CLI call need to find this node, and only it."""
        return {
            "HOME": str(self.dir / "home"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": HOST,
        }

    def _popen_kwargs(self) -> dict[str, Any]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def start(self) -> RabbitMQNode:
        self._prepare()
        self._epmd = TCPExecutor(
            [self._epmd_program, "-port", str(self.epmd_port), "-address", HOST],
            host=HOST,
            port=self.epmd_port,
            timeout=15,
            stdout=(self.dir / "epmd.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        self._server = _ListeningExecutor(
            [str(self._scripts / "rabbitmq-server")],
            [self.amqp_port, self.management_port],
            timeout=RABBITMQ_START_SECONDS,
            sleep=0.2,
            envvars=self.env(),
            cwd=str(self.dir),
            stdout=self.server_log.open("w"),
            stderr=subprocess.STDOUT,
            popen_kwargs=self._popen_kwargs(),
        )
        try:
            self._epmd.start()
            self._server.start()
        except (AlreadyRunning, ProcessExitedWithError, TimeoutExpired) as exc:
            self.stop()
            raise BrokerStartError(
                f"the private RabbitMQ node did not start ({exc}); its output:\n"
                f"{tail(self.server_log)}\n--- {self.node_log.name} ---\n{tail(self.node_log)}"
            ) from exc
        return self

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n <this node> ...``; raises with the tool's output on failure."""
        finished = subprocess.run(
            [str(self._scripts / "rabbitmqctl"), "-q", "-n", self.node, *args],
            env={**os.environ, **self.env()},
            cwd=str(self.dir),
            capture_output=True,
            text=True,
            timeout=timeout,
            **self._popen_kwargs(),
        )
        if finished.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} on {self.node} failed "
                f"({finished.returncode}): {finished.stdout}{finished.stderr}"
            )
        return finished.stdout

    def stop_app(self, timeout: float = 30) -> None:
        """``rabbitmqctl stop_app``: the node stays up, AMQP and the API go away."""
        self.ctl("stop_app")
        deadline = time.monotonic() + timeout
        while port_open(self.amqp_port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} still listens on {self.amqp_port}")
            time.sleep(0.1)

    def start_app(self, timeout: float = RABBITMQ_START_SECONDS) -> None:
        """``rabbitmqctl start_app``, then wait until AMQP and the API answer again."""
        self.ctl("start_app", timeout=timeout)
        self.ctl("await_startup", timeout=timeout)
        deadline = time.monotonic() + timeout
        while not (port_open(self.amqp_port) and port_open(self.management_port)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} did not listen again within {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGKILL the node's process group and every process with its marker, then epmd.

        The node's data is thrown away with its folder, so a clean shutdown (SIGTERM,
        which takes RabbitMQ several seconds) would flush nothing anyone reads.
        """
        try:
            if self._server is not None:
                self._server.kill()
        finally:
            if self._epmd is not None:
                self._epmd.kill()


class RedisServer:
    """A throw-away ``redis-server`` under ``base_dir``: no persistence, loopback only;
    :meth:`restart` loses every key, as a failover may."""

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.dir = base_dir / "redis"
        self.program = find_program(REDIS_PACKAGE.executable)
        if self.program is None:
            raise REDIS_PACKAGE.missing()
        self.port = port or free_ports(1)[0]
        self._executor: TCPExecutor | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.dir / "redis.out"

    def pids(self) -> set[int]:
        from mirakuru.base_env import processes_with_env

        if self._executor is None:
            return set()
        found = processes_with_env("mirakuru_uuid", self._executor._uuid)
        if self._executor.process is not None:
            found.add(self._executor.process.pid)
        return found

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        assert self.program is not None
        # redis-server --port P ...: no config file, so no machine configuration either.
        self._executor = TCPExecutor(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            host=HOST,
            port=self.port,
            timeout=REDIS_START_SECONDS,
            stdout=self.log.open("a"),  # a restart's output follows the first run's
            stderr=subprocess.STDOUT,
        )
        try:
            self._executor.start()
        except (AlreadyRunning, ProcessExitedWithError, TimeoutExpired) as exc:
            self.stop()
            raise BrokerStartError(
                f"the private Redis did not start ({exc}); its output:\n{tail(self.log)}"
            ) from exc
        return self

    def shutdown_nosave(self, timeout: float = 15) -> None:
        """``SHUTDOWN NOSAVE``: the server exits at once, and every key with it.

        Sent over a plain socket: a client library would retry, with backoff and for
        seconds, the connection the server closes as it goes.
        """
        if self._executor is None or self._executor.process is None:
            raise RuntimeError(f"the private Redis on {self.port} is not running")
        with socket.create_connection((HOST, self.port), timeout=5) as sock:
            sock.sendall(b"SHUTDOWN NOSAVE\r\n")
            with contextlib.suppress(OSError):
                sock.recv(1024)  # the server closes the connection: no reply comes
        self._executor.process.wait(timeout=timeout)
        self._executor.stop()  # the process is gone: this only clears the executor

    def restart(self, down_seconds: float) -> None:
        """Shut down without saving, stay down ``down_seconds``, start empty on the same
        port."""
        self.shutdown_nosave()
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self._executor is None:
            return
        try:
            if self._executor.running():
                with contextlib.suppress(ProcessExitedWithError, TimeoutExpired):
                    self._executor.stop()
        finally:
            self._executor.kill()


@dataclass(frozen=True)
class Brokers:
    """What :func:`private_brokers` started: ``None`` for a server it was told to leave."""

    rabbitmq: RabbitMQNode | None
    redis: RedisServer | None

    @property
    def amqp_url(self) -> str | None:
        return self.rabbitmq.amqp_url if self.rabbitmq else None

    @property
    def management_url(self) -> str | None:
        return self.rabbitmq.management_url if self.rabbitmq else None

    @property
    def redis_url(self) -> str | None:
        return self.redis.url if self.redis else None


def _base_dir(account_needs_access: bool) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="rnr-brokers-"))
    if account_needs_access:  # the rabbitmq user must reach its folder inside
        folder.chmod(0o755)
    return folder


@contextlib.contextmanager
def private_brokers(*, rabbitmq: bool = True, redis: bool = True) -> Iterator[Brokers]:
    """Start the servers asked for, yield their URLs, stop them and delete their folder.

    Raises :class:`MissingServer` (naming the package) before starting anything when a
    program is not installed, and :class:`BrokerStartError` with the server's log when
    one does not come up.
    """
    base = _base_dir(rabbitmq and _rabbitmq_account() is not None)
    node: RabbitMQNode | None = None
    cache: RedisServer | None = None
    try:
        # Construct first: a missing program fails before anything starts. The ports are
        # chosen together, so that the two servers never pick the same one.
        ports = free_ports(5)
        node = RabbitMQNode(base, ports[:4]) if rabbitmq else None
        cache = RedisServer(base, ports[4]) if redis else None
        if cache is not None:
            cache.start()
        if node is not None:
            node.start()
        yield Brokers(node, cache)
    finally:
        try:
            if node is not None:
                node.stop()
        finally:
            if cache is not None:
                cache.stop()
            shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    """Start a private pair, print the variables that reach it, wait for Ctrl-C."""
    try:
        with private_brokers() as brokers:
            print(f"export RABBITMQ_URL={brokers.amqp_url}")
            print(f"export RABBITMQ_MANAGEMENT_URL={brokers.management_url}")
            print(f"export REDIS_URL={brokers.redis_url}")
            print("# management UI: same URL, guest/guest. Ctrl-C stops both.", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except MissingServer as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
