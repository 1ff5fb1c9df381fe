"""The Dockerfile: hadolint clean, each image's entry command resolves to an importable
handler or module, the Terraform runs the same commands, each Lambda image installs
what its service imports, and no image that runs in AWS contains the development
stand-ins (devstack/).

No Docker engine runs here, so the images are never built; the Dockerfile is parsed
(tests/unit/test_compose.py's parser) and its commands resolved in this interpreter,
which has the project installed.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import setuptools
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT
from tests.support.deploy import MODULES, TERRAFORM, locals_of, named, tool
from tests.unit.test_compose import DOCKERFILE, dockerfile_instructions, dockerfile_stages

AWS_IMAGES = ("worker", "producer", "autoscaler", "postproc")
LAMBDA_IMAGES = ("producer", "autoscaler", "postproc")
IMAGE_REQUIREMENTS = REPO_ROOT / "deploy" / "images"


def stages():
    return dockerfile_stages(DOCKERFILE.read_text())


def entry_argv(target: str) -> list[str]:
    stage = stages()[target]
    return [*(stage.entrypoint or []), *(stage.cmd or [])]


# ----------------------------------------------------------------------------- hadolint


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = run_hadolint(DOCKERFILE)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using latest


# ------------------------------------------------------------------------ entry commands


@pytest.mark.parametrize("target", [*AWS_IMAGES, "tools"])
def test_each_image_entry_command_resolves_to_an_importable_handler_or_module(
    target: str,
) -> None:
    argv = entry_argv(target)
    assert argv[:2] == ["python", "-m"], f"{target}: {argv}"
    module = argv[2]
    if module == "awslambdaric":
        assert importlib.util.find_spec("awslambdaric"), "awslambdaric is not installed"
        [handler] = argv[3:]
        module_name, _, function = handler.rpartition(".")
        loaded = importlib.import_module(module_name)
        assert callable(getattr(loaded, function, None)), f"{target}: {handler} is not callable"
        assert target in LAMBDA_IMAGES
        assert module_name == f"services.{target}.handler"
    else:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{target}: no module {module}"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__"), f"{target}: {module}"


def test_the_resolver_rejects_a_missing_handler() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("services.producer.no_such_handler")
    assert importlib.util.find_spec("services.no_such_service") is None


@pytest.mark.parametrize("target", LAMBDA_IMAGES)
def test_terraform_runs_each_lambda_with_its_image_command(target: str) -> None:
    commands = locals_of(TERRAFORM)["handler_commands"]
    assert commands[target] == stages()[target].cmd
    function = named(TERRAFORM, "module")["functions"]["functions"][target]
    assert function["command"] == f'${{local.handler_commands["{target}"]}}'
    assert function["image_uri"] == f'${{local.images["{target}"]}}'


def test_terraform_runs_the_worker_with_its_image_command_user_and_health_check() -> None:
    container = locals_of(MODULES / "compute")["container"]
    assert container["command"] == stages()["worker"].cmd
    assert container["user"] == stages()["worker"].user
    probe = locals_of(MODULES / "compute")["readiness_probe"]
    assert "/readyz" in probe and "/readyz" in (stages()["worker"].healthcheck or "")
    assert container["healthCheck"]["command"][:3] == ["CMD", "python", "-c"]


def test_every_aws_image_has_a_repository_and_runs_as_the_unprivileged_user() -> None:
    images = named(MODULES / "registry", "variable")["images"]["default"]
    assert sorted(images) == sorted(AWS_IMAGES)
    for target in AWS_IMAGES:
        assert stages()[target].user == "10001:10001", target
    assert stages()["worker"].healthcheck, "the worker image has a HEALTHCHECK"


def test_the_base_image_is_pinned_by_tag_and_digest_and_refreshed_by_a_bot() -> None:
    text = DOCKERFILE.read_text()
    [base] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base
    assert "Dependabot" in text and "Renovate" in text
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            source = args.split()[0]
            assert source == "${PYTHON_IMAGE}" or source in stages(), args
    dependabot = (REPO_ROOT / ".github" / "dependabot.yml").read_text()
    assert "package-ecosystem: docker" in dependabot


# ------------------------------------------------------------ what each Lambda installs


def module_path(name: str) -> Path | None:
    for candidate in (
        REPO_ROOT / f"{name.replace('.', '/')}.py",
        REPO_ROOT / name.replace(".", "/") / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` (never run, never imported
    at run time)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def third_party_imports(entry_modules: list[str]) -> set[str]:
    """Top-level third-party modules imported anywhere (functions included) by the entry
    modules and every project module they import, transitively."""
    seen: set[str] = set()
    found: set[str] = set()
    pending = list(entry_modules)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_path(name)
        if path is None:
            continue
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in runtime_nodes(ast.parse(path.read_text())):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                imported = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for dotted in imported:
                top = dotted.split(".")[0]
                if top in {"rnr", "services"}:
                    parts = dotted.split(".")
                    pending.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.add(top)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: list[Requirement]) -> set[str]:
    """Distributions installed by these requirements, from the installed metadata."""
    installed: set[str] = set()
    pending = [(requirement, frozenset(requirement.extras)) for requirement in requirements]
    while pending:
        requirement, extras = pending.pop()
        name = canonical(requirement.name)
        if name in installed:
            continue
        installed.add(name)
        for line in importlib.metadata.requires(requirement.name) or []:
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if dependency.marker is None or any(
                dependency.marker.evaluate(e) for e in environments
            ):
                pending.append((dependency, frozenset(dependency.extras)))
    return installed


def image_requirements(service: str) -> list[Requirement]:
    lines = (IMAGE_REQUIREMENTS / f"{service}.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("service", LAMBDA_IMAGES)
def test_each_lambda_image_installs_everything_its_service_imports(service: str) -> None:
    provided = closure(image_requirements(service))
    distributions = importlib.metadata.packages_distributions()
    imports = third_party_imports([f"services.{service}.handler", f"services.{service}.__main__"])
    assert "pydantic" in imports, "the import scan found too little to be trusted"
    missing = {
        module: distributions.get(module, [module])
        for module in imports
        if not any(canonical(d) in provided for d in distributions.get(module, [module]))
    }
    assert not missing, (
        f"deploy/images/{service}.txt does not install what services.{service} imports: {missing}"
    )


@pytest.mark.parametrize("service", ["producer", "autoscaler"])
def test_the_producer_and_autoscaler_images_leave_out_the_hydrology_stack(service: str) -> None:
    # The point of per-service lists: numba, netCDF4 and the like stay out of the images
    # that do not read forecasts (the post-processor reads NetCDF and flowpaths).
    provided = closure(image_requirements(service))
    assert not provided & {"numba", "llvmlite", "netcdf4", "shapely"}, provided


@pytest.mark.parametrize("service", LAMBDA_IMAGES)
def test_each_lambda_requirement_is_pinned_by_the_constraints(service: str) -> None:
    pinned = {
        canonical(line.split("==")[0])
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in image_requirements(service):
        assert canonical(requirement.name) in pinned, requirement.name
        assert not requirement.specifier, f"{requirement}: versions come from constraints.txt"
    stage_text = DOCKERFILE.read_text()
    assert f"-c constraints.txt -r deploy/images/{service}.txt" in stage_text
    assert f"COPY --from=builder-{service} /opt/venv /opt/venv" in stage_text


def test_the_import_scan_follows_project_modules_into_function_bodies() -> None:
    # The worker's routing stack is imported by rnr modules, some inside functions.
    assert {"numba", "netCDF4", "pyarrow"} <= third_party_imports(["services.worker.__main__"])


# ------------------------------------------------------------- no devstack in AWS images


def context_copies() -> dict[str, tuple[str | None, list[str], list[str]]]:
    """Per stage: its parent stage, what it copies from the build context, and the stages
    it copies from (``COPY --from=``)."""
    stages: dict[str, tuple[str | None, list[str], list[str]]] = {}
    current: str | None = None
    for keyword, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            assert match, args
            base, current = match.group(1), match.group(2) or f"stage{len(stages)}"
            stages[current] = (base if base in stages else None, [], [])
        elif keyword in {"COPY", "ADD"} and current is not None:
            words = args.split()
            flags = [word for word in words if word.startswith("--")]
            paths = [word for word in words if not word.startswith("--")]
            origin = [flag.split("=", 1)[1] for flag in flags if flag.startswith("--from=")]
            if origin:
                stages[current][2].append(origin[0])
            else:
                stages[current][1].extend(paths[:-1])  # the last one is the destination
    return stages


def build_context_sources(target: str) -> set[str]:
    """Every build-context path that reaches ``target``'s image, through its parents and
    the stages it copies from."""
    stages = context_copies()
    sources: set[str] = set()
    pending, seen = [target], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in stages:
            continue
        seen.add(name)
        parent, copied, origins = stages[name]
        sources.update(copied)
        pending.extend([*origins, *([parent] if parent else [])])
    return sources


def carries_devstack(source: str) -> bool:
    # "." or a wildcard would take devstack/ too: .dockerignore does not exclude it.
    return source.rstrip("/") in {".", "./", "*"} or source.lstrip("./").startswith("devstack")


@pytest.mark.parametrize("target", AWS_IMAGES)
def test_no_image_that_runs_in_aws_contains_devstack(target: str) -> None:
    sources = build_context_sources(target)
    assert {"rnr", "services"} <= {source.rstrip("/") for source in sources}, sources
    assert not [source for source in sources if carries_devstack(source)], sources


def test_the_local_tools_image_carries_devstack_and_runs_it() -> None:
    assert any(carries_devstack(source) for source in build_context_sources("tools"))
    assert entry_argv("tools")[:3] == ["python", "-m", "devstack.replay"]


def test_the_wheel_the_images_install_leaves_out_devstack() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = setuptools.find_packages(where=str(REPO_ROOT), **config["packages"]["find"])
    assert {"rnr", "rnr.core", "rnr.hydro_io", "services", "services.worker"} <= set(packages)
    assert {package.split(".")[0] for package in packages} == {"rnr", "services"}
    assert not any("devstack" in key for key in config.get("package-data", {}))
