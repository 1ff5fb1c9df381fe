"""``rnr-ops index build`` and ``rnr-ops index status``: the network index artifact.

Run ``index build`` once per hydrofabric version, after uploading the hydrofabric: it
copies the hydrofabric from the input bucket (as a worker does), builds the index
artifact and puts it next to the hydrofabric (see :mod:`rnr.storage.index_artifact_s3`
for the layout), so that no worker task ever indexes at start-up. A worker that finds
no artifact (or a stale one) builds and uploads it itself; running the command first
only spares the first task that cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnr.core.settings import HydrofabricSettings, load_settings
from rnr.hydro_io.index_artifact import (
    IndexArtifactInvalid,
    SourceIdentity,
    artifact_dir,
    build_artifact,
    identify_source,
    open_artifact,
)
from rnr.ops.errors import OperatorError, Unavailable
from rnr.storage.aws import AwsClients
from rnr.storage.aws_errors import AWS_CALL_ERRORS
from rnr.storage.hydrofabric_cache import fetch_hydrofabric
from rnr.storage.index_artifact_s3 import (
    LOCAL_INDEX_FOLDER,
    ArtifactLocation,
    fetch_manifest,
    index_prefix,
    upload_artifact,
)

_HELP = """\
The network index artifact: the worker's segment index of the hydrofabric, prebuilt
and stored next to it in INPUT_BUCKET, so that a worker memory-maps it at start-up
instead of indexing the hydrofabric (13 s and 2.6 GiB on 3 million flowpaths).

It reads the worker's variables: INPUT_BUCKET, HYDROFABRIC_LOCATION,
FLOWPATH_ATTRIBUTES_LAYER, HYDROFABRIC_CACHE_DIR (the local copy), AWS_REGION and
AWS_ENDPOINT_URL. The artifact goes to
<parent of HYDROFABRIC_LOCATION>/index/v<format>/<name>/<attributes layer>/.
"""


class IndexSettings(HydrofabricSettings):
    """The worker's hydrofabric variables (``FLOWPATH_ATTRIBUTES_LAYER`` included)."""

    flowpath_attributes_layer: str = "flowpath-attributes-ml"


def register(subparsers: Any) -> None:
    index = subparsers.add_parser(
        "index",
        help="build or check the network index artifact next to the hydrofabric",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = index.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = commands.add_parser(
        "build",
        help="build the artifact for the hydrofabric's current version and upload it",
        description="Copy the hydrofabric, build its index artifact, upload it (files "
        "first, the manifest last). Does nothing when the bucket's artifact is already "
        "this version's, unless --force.",
    )
    build.add_argument("--force", action="store_true", help="build and upload even if current")
    build.add_argument("--json", action="store_true", help="print the outcome as JSON")
    build.set_defaults(handler=run_build)
    status = commands.add_parser(
        "status",
        help="say whether the bucket's artifact is this hydrofabric version's (exit 1 if not)",
    )
    status.add_argument("--json", action="store_true", help="print the outcome as JSON")
    status.set_defaults(handler=run_status)


def _say(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


@dataclass
class _Context:
    settings: IndexSettings
    source: SourceIdentity
    where: ArtifactLocation


async def _prepare(client: Any, settings: IndexSettings) -> _Context:
    _say(f"copying the hydrofabric s3://{settings.input_bucket}/{settings.hydrofabric_location}")
    local = await fetch_hydrofabric(
        client,
        settings.input_bucket,
        settings.hydrofabric_location,
        settings.hydrofabric_cache_dir,
    )
    source = identify_source(local, settings.flowpath_attributes_layer)
    prefix = index_prefix(settings.hydrofabric_location, source.attributes_layer)
    return _Context(settings, source, ArtifactLocation(settings.input_bucket, prefix))


async def _bucket_state(client: Any, context: _Context) -> str:
    """``current``, ``missing``, ``stale`` or ``unreadable`` (a manifest not ours)."""
    try:
        manifest = await fetch_manifest(client, context.where)
    except IndexArtifactInvalid:
        return "unreadable"
    if manifest is None:
        return "missing"
    try:
        manifest.check(context.source.fingerprint)
    except IndexArtifactInvalid:
        return "stale"
    return "current"


def _local_artifact(context: _Context) -> Path:
    """This version's artifact in the local cache: reused when intact, else built."""
    root = context.settings.hydrofabric_cache_dir / LOCAL_INDEX_FOLDER
    folder = artifact_dir(root, context.source.fingerprint)
    try:
        open_artifact(folder, context.source.fingerprint)
        _say(f"using the artifact already built in {folder}")
        return folder
    except IndexArtifactInvalid:
        pass
    _say(f"building the index of {context.source.location} (a minute per 5M flowpaths)")
    started = time.perf_counter()
    folder = build_artifact(context.source, root)
    _say(f"built in {time.perf_counter() - started:.1f} s: {folder}")
    return folder


def _report(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(outcome, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(" ".join(f"{key}={value}" for key, value in outcome.items()))


async def _with_client(settings: IndexSettings, action: Any) -> dict[str, Any]:
    try:
        async with AwsClients(settings).client("s3") as client:
            result: dict[str, Any] = await action(client)
            return result
    except AWS_CALL_ERRORS as exc:
        raise Unavailable(
            f"S3 failed: {exc}; check INPUT_BUCKET, AWS_REGION/AWS_ENDPOINT_URL and the "
            "credentials' s3:GetObject, s3:ListBucket and s3:PutObject, then run again"
        ) from exc


async def build_and_upload(settings: IndexSettings, *, force: bool) -> dict[str, Any]:
    """Make the bucket hold this hydrofabric version's artifact; the outcome record."""

    async def action(client: Any) -> dict[str, Any]:
        context = await _prepare(client, settings)
        state = await _bucket_state(client, context)
        outcome = {
            "artifact": context.where.url(),
            "fingerprint": context.source.fingerprint,
            "attributes_layer": context.source.attributes_layer,
            "was": state,
        }
        if state == "current" and not force:
            _say("the bucket's artifact is already this version's; nothing to do (--force)")
            return {**outcome, "action": "none"}
        folder = _local_artifact(context)
        _say(f"uploading to {context.where.url()}")
        await upload_artifact(client, context.where, folder)
        return {**outcome, "action": "uploaded"}

    return await _with_client(settings, action)


async def check_status(settings: IndexSettings) -> dict[str, Any]:
    async def action(client: Any) -> dict[str, Any]:
        context = await _prepare(client, settings)
        return {
            "artifact": context.where.url(),
            "fingerprint": context.source.fingerprint,
            "state": await _bucket_state(client, context),
        }

    return await _with_client(settings, action)


async def run_build(args: argparse.Namespace) -> int:
    settings = load_settings(IndexSettings)
    try:
        outcome = await build_and_upload(settings, force=args.force)
    except (OSError, ValueError) as exc:
        raise OperatorError(f"could not build the index: {exc}") from exc
    _report(outcome, args.json)
    return 0


async def run_status(args: argparse.Namespace) -> int:
    outcome = await check_status(load_settings(IndexSettings))
    _report(outcome, args.json)
    return 0 if outcome["state"] == "current" else 1
