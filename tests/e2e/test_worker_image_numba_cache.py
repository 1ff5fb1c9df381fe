"""The worker image's numba cache: filled at build time, used without compiling.

No Docker engine runs here, so the image is not built. Instead the test does what the
Dockerfile's worker stage does: it takes that stage's numba variables (ENV, with the
ARG defaults) and its cache-filling RUN command from the Dockerfile itself, runs the
command against a fresh cache folder, then routes once in a new interpreter with the
same variables and counts compilations (numba's ``numba:compile`` events and every
dispatcher's cache misses). A control routes against the same cache for another CPU
baseline and must compile: the cache is keyed by the CPU, which is why the image pins
``NUMBA_CPU_NAME``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.unit.test_compose import DOCKERFILE, dockerfile_instructions

_ROUTE_ONCE = """
import json, sys
import numpy as np
from numba.core import event

compiled = []

class Listener(event.Listener):
    def on_start(self, ev):
        compiled.append(str(ev.data.get("dispatcher")))

    def on_end(self, ev):
        pass

event.register("numba:compile", Listener())
from rnr.hydro import muskingum_cunge
from rnr.hydro.muskingum_cunge import ChannelParameters, route

rng = np.random.default_rng(1)
n = 50
bottom = rng.uniform(10, 60, n)
params = ChannelParameters(
    length_m=rng.uniform(500, 5000, n), bottom_width_m=bottom, top_width_m=bottom * 2,
    floodplain_top_width_m=bottom * 6, manning_n=rng.uniform(0.03, 0.06, n),
    floodplain_manning_n=rng.uniform(0.06, 0.12, n), side_slope=rng.uniform(0.5, 3, n),
    bed_slope=10 ** rng.uniform(-4, -2.3, n),
)
downstream = np.arange(1, n + 1)
downstream[-1] = -1
lateral = np.zeros((288, n))
lateral[:, 0] = np.linspace(100, 3000, 288)
result = route(params, downstream, lateral, 300.0)
assert np.isfinite(result.flow_m3_s).all()

hits = misses = 0
modules = [m for name, m in sys.modules.items() if name.startswith("rnr.hydro")]
for module in modules:
    for value in vars(module).values():
        stats = getattr(value, "stats", None)
        if stats is not None and hasattr(stats, "cache_hits"):
            hits += sum(stats.cache_hits.values())
            misses += sum(stats.cache_misses.values())
print(json.dumps({"compiled": compiled, "cache_hits": hits, "cache_misses": misses}))
"""


def worker_stage_numba() -> tuple[dict[str, str], list[str]]:
    """The numba variables the worker stage sets (ENV, ARG defaults substituted) and
    the argv of its RUN step that fills the cache (up to the first ``&&``)."""
    stage = None
    arguments: dict[str, str] = {}
    env: dict[str, str] = {}
    command: list[str] | None = None
    for keyword, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            stage = args.split()[-1]
            continue
        if stage not in {"runtime", "worker"}:
            continue
        if keyword == "ARG":
            name, _, default = args.partition("=")
            arguments[name] = default
        elif keyword == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = re.sub(r"\$\{(\w+)\}", lambda m: arguments.get(m[1], ""), value)
        elif keyword == "RUN" and stage == "worker" and "warm_up" in args:
            words = shlex.split(args)
            command = words[: words.index("&&")] if "&&" in words else words
    assert command, "the worker stage has no RUN step calling warm_up()"
    return {k: v for k, v in env.items() if k.startswith("NUMBA_")}, command


def test_the_worker_stage_fills_a_cache_for_a_named_cpu() -> None:
    env, command = worker_stage_numba()
    assert env["NUMBA_CACHE_DIR"].startswith("/opt/")  # in the image, not a /tmp volume
    assert env["NUMBA_CPU_NAME"] not in {"", "host"} and env["NUMBA_CPU_FEATURES"] == ""
    assert command[:2] == ["python", "-c"]


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    return subprocess.run(
        argv,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env, command = worker_stage_numba()
    env = {**env, "NUMBA_CACHE_DIR": str(tmp_path_factory.mktemp("numba-cache"))}
    built = run(command, env)
    assert built.returncode == 0, built.stderr
    assert any(Path(env["NUMBA_CACHE_DIR"]).rglob("*.nbi")), "the build step cached nothing"
    return env


def route_once(env: dict[str, str]) -> dict[str, object]:
    finished = run(["python", "-c", _ROUTE_ONCE], env)
    assert finished.returncode == 0, finished.stderr
    result: dict[str, object] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def test_the_first_route_in_a_fresh_interpreter_compiles_nothing(
    filled_cache: dict[str, str],
) -> None:
    result = route_once(filled_cache)
    assert result["compiled"] == [] and result["cache_misses"] == 0, result
    assert isinstance(result["cache_hits"], int) and result["cache_hits"] > 0


def test_a_cache_for_another_cpu_is_not_used(filled_cache: dict[str, str]) -> None:
    """The control: the same check sees compilation when the cache cannot serve."""
    other = "x86-64-v2" if filled_cache["NUMBA_CPU_NAME"] != "x86-64-v2" else "x86-64"
    result = route_once({**filled_cache, "NUMBA_CPU_NAME": other})
    assert result["compiled"] and result["cache_misses"], result
