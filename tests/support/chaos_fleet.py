"""The service processes of one chaos scenario: workers started, killed and restarted at
will, producer runs back to back, every log kept (one file per process) for the audit
and for the failure report."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.chaos_audit import count_messages, log_lines
from tests.support.processes import REPO_ROOT, ServiceProcess, producer_once_command, worker_command


@dataclass
class ProducerRun:
    returncode: int | None  # None: killed after its time limit
    log: Path
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def published(self) -> list[str]:
        """Product ids this run had confirmed by the broker (its ``products published``
        lines), also when the run failed later."""
        ids: list[str] = []
        for line in log_lines(self.log):
            if line.get("message") == "products published":
                ids += [str(product_id) for product_id in line.get("product_ids", [])]
        return ids


class Fleet:
    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.workers: list[ServiceProcess] = []
        self.producer_runs: list[ProducerRun] = []
        self._lock = threading.Lock()

    def worker(self, **extra: str) -> ServiceProcess:
        """A new worker process (not waited for: call ``wait_ready``)."""
        with self._lock:
            folder = self.log_dir / f"worker-{len(self.workers) + 1:03d}"
            folder.mkdir(parents=True)
            worker = ServiceProcess(worker_command(), {**self.env, **extra})
            self.workers.append(worker)
        return worker.start(folder)

    def producer_once(self, timeout: float = 60, **extra: str) -> ProducerRun:
        with self._lock:
            log = self.log_dir / f"producer-{len(self.producer_runs) + 1:03d}.log"
        started = time.monotonic()
        with log.open("wb") as out:
            process = subprocess.Popen(
                producer_once_command(),
                env={**os.environ, **self.env, **extra, "PYTHONUNBUFFERED": "1"},
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                returncode: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                returncode = None
        run = ProducerRun(returncode, log, round(time.monotonic() - started, 2))
        with self._lock:
            self.producer_runs.append(run)
        return run

    def publishes(self) -> Counter[str]:
        """Product id -> how many producer runs had it confirmed."""
        counts: Counter[str] = Counter()
        for run in self.producer_runs:
            counts.update(run.published())
        return counts

    def worker_logs(self) -> list[Path | None]:
        return [worker.log_path for worker in self.workers]

    def processed(self) -> Counter[str]:
        """Product id -> ``product processed`` lines over every worker that ran."""
        return count_messages(self.worker_logs(), "product processed", "correlation_id")

    def duplicate_acks(self) -> Counter[str]:
        """Product id -> redeliveries the workers recognised as already processed and
        acked without redoing them (their log line says "duplicate")."""
        return count_messages(self.worker_logs(), "duplicate", "correlation_id", exact=False)

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    def tails(self, lines: int = 30) -> str:
        parts = []
        for worker in self.workers:
            text = worker.log().splitlines()[-lines:]
            code = worker.process.poll() if worker.process else None
            parts.append(f"--- {worker.log_path} (exit {code}) ---\n" + "\n".join(text))
        for run in self.producer_runs[-3:]:
            text = run.log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {run.log} (exit {run.returncode}) ---\n" + "\n".join(text))
        return "\n".join(parts)


@dataclass
class ProducerLoop:
    """``producer once`` back to back in a thread, adding ``batch`` new products to the
    replay server before each run until ``total`` were added; then it goes on until one
    run succeeds after the last addition (so every product was listed by a good run)."""

    fleet: Fleet
    add_products: Callable[[int], list[str]]
    batch: int
    total: int
    pause_seconds: float = 0.2
    added: list[str] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def start(self) -> ProducerLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if len(self.added) < self.total:
                    self.added += self.add_products(min(self.batch, self.total - len(self.added)))
                    finished_adding = False
                else:
                    finished_adding = True
                run = self.fleet.producer_once()
                if finished_adding and run.ok:
                    return
                time.sleep(self.pause_seconds)
        except BaseException as exc:  # reported by join()
            self.error = exc

    @property
    def runs(self) -> list[ProducerRun]:
        return self.fleet.producer_runs

    def good_runs(self) -> int:
        return sum(run.ok for run in self.runs)

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout=timeout)
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=70)
            raise TimeoutError(f"the producer loop did not finish within {timeout}s")
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=70)
