"""Running a service as its own process, the way the local stack and compose run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import free_port, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, command: list[str], env: dict[str, str], *, http_port: int | None = None):
        self.http_port = http_port or free_port()
        self.command = command
        self.env = {**os.environ, **env, "HTTP_PORT": str(self.http_port), "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, log_dir: Path) -> ServiceProcess:
        self.log_path = log_dir / f"{self.command[-1].replace('.', '_')}-{self.http_port}.log"
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def status(self, path: str) -> int | None:
        try:
            return httpx.get(f"{self.url}{path}", timeout=2).status_code
        except httpx.HTTPError:
            return None

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(lambda: self.status("/readyz") == 200, timeout=timeout, what="readyz 200")

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=2).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "services.worker"]


def producer_once_command() -> list[str]:
    return [sys.executable, "-m", "services.producer", "once"]
