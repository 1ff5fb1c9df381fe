"""The network index artifact in the input bucket, next to the hydrofabric it indexes.

Why: every worker task would otherwise index a national hydrofabric at start-up
(seconds, and more memory than a task needs afterwards). The artifact is built once per
hydrofabric version, by ``python -m rnr.ops index build`` or by the first worker that
finds it missing, and every later task downloads it once into its local cache and
memory-maps it (:mod:`rnr.hydro_io.index_artifact`).

Layout, for ``HYDROFABRIC_LOCATION`` = ``<parent>/<name>`` (a ``.gpkg`` key or a prefix)::

    <parent>/index/v<format>/<name>/<attributes layer>/manifest.json
    <parent>/index/v<format>/<name>/<attributes layer>/<fingerprint>/<array>.npy

The manifest is written last and names the fingerprint of the hydrofabric the files
were built from, so a reader sees either the previous complete artifact or the new one,
and files of two builds never mix. A manifest whose fingerprint is not the local
hydrofabric's is stale: the worker builds a new artifact and replaces it. A file whose
checksum differs from the manifest's is corrupt: the download is discarded and the
artifact rebuilt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnr.hydro.index_build import INDEX_FORMAT_VERSION
from rnr.hydro.segments import NetworkIndex
from rnr.hydro_io.index_artifact import (
    MANIFEST_NAME,
    IndexArtifactInvalid,
    Manifest,
    SourceIdentity,
    artifact_dir,
    build_artifact,
    identify_source,
    install,
    open_artifact,
    read_manifest,
    remove_other_versions,
)
from rnr.storage.aws_errors import AWS_CALL_ERRORS, error_code

logger = logging.getLogger(__name__)

INDEX_FOLDER = "index"
LOCAL_INDEX_FOLDER = "index"  # under HYDROFABRIC_CACHE_DIR
CHUNK_BYTES = 8 * 1024 * 1024
OUTCOMES = ("cached", "downloaded", "built")
_UPLOAD_ERRORS: tuple[type[Exception], ...] = (*AWS_CALL_ERRORS, OSError, IndexArtifactInvalid)


def index_prefix(location: str, attributes_layer: str) -> str:
    """The key prefix of the artifact for a hydrofabric location and attributes layer."""
    parent, _, name = location.strip("/").rpartition("/")
    base = f"{parent}/" if parent else ""
    return f"{base}{INDEX_FOLDER}/v{INDEX_FORMAT_VERSION}/{name}/{attributes_layer}"


@dataclass(frozen=True)
class ArtifactLocation:
    bucket: str
    prefix: str

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}/{MANIFEST_NAME}"

    def file_key(self, fingerprint: str, file_name: str) -> str:
        return f"{self.prefix}/{fingerprint}/{file_name}"

    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/"


async def fetch_manifest(client: Any, where: ArtifactLocation) -> Manifest | None:
    """The bucket's manifest, or None where there is none. Raises IndexArtifactInvalid
    for one that cannot be parsed, and the SDK's error for anything else."""
    try:
        answer = await client.get_object(Bucket=where.bucket, Key=where.manifest_key)
        async with answer["Body"] as stream:
            text = await stream.read()
    except AWS_CALL_ERRORS as exc:
        if error_code(exc) in {"NoSuchKey", "404"}:
            return None
        raise
    return Manifest.from_json(text)


async def _download_file(client: Any, bucket: str, key: str, target: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    answer = await client.get_object(Bucket=bucket, Key=key)
    # Start-up only: the event loop has nothing else to serve but health checks.
    with target.open("wb") as handle:
        async for chunk in answer["Body"].iter_chunks(CHUNK_BYTES):
            digest.update(chunk)
            handle.write(chunk)
    if digest.hexdigest() != sha256:
        raise IndexArtifactInvalid(f"s3://{bucket}/{key} does not match the manifest's checksum")


async def download_artifact(
    client: Any, where: ArtifactLocation, manifest: Manifest, root: Path
) -> Path:
    """Copy the artifact the manifest names into the local cache root, verifying every
    file's checksum on the way; the folder appears whole or not at all."""
    target = artifact_dir(root, manifest.fingerprint)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        for entry in manifest.files:
            key = where.file_key(manifest.fingerprint, entry.file_name)
            try:
                await _download_file(
                    client, where.bucket, key, temporary / entry.file_name, entry.sha256
                )
            except AWS_CALL_ERRORS as exc:
                if error_code(exc) in {"NoSuchKey", "404"}:
                    raise IndexArtifactInvalid(
                        f"the manifest names s3://{where.bucket}/{key}, which is missing"
                    ) from exc
                raise
        (temporary / MANIFEST_NAME).write_text(manifest.to_json())
        install(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


async def upload_artifact(client: Any, where: ArtifactLocation, folder: Path) -> Manifest:
    """Put a local artifact's files, then its manifest (last: readers trust only what a
    manifest names, so a half-finished upload is never seen)."""
    manifest = read_manifest(folder)
    for entry in manifest.files:
        key = where.file_key(manifest.fingerprint, entry.file_name)
        await client.upload_file(str(folder / entry.file_name), where.bucket, key)
    await client.put_object(
        Bucket=where.bucket,
        Key=where.manifest_key,
        Body=manifest.to_json().encode(),
        ContentType="application/json",
    )
    logger.info(
        "network index artifact uploaded",
        extra={"artifact": where.url(), "fingerprint": manifest.fingerprint},
    )
    return manifest


@dataclass(frozen=True)
class LoadedIndex:
    """The index a worker uses, and how it came by it (``OUTCOMES``)."""

    index: NetworkIndex
    outcome: str
    fingerprint: str
    folder: Path


async def _remote_manifest(
    client: Any, where: ArtifactLocation, fingerprint: str
) -> Manifest | None:
    """The bucket's manifest if it is this hydrofabric's; None (logged) otherwise."""
    try:
        manifest = await fetch_manifest(client, where)
        if manifest is None:
            logger.info(
                "no network index artifact in the bucket yet", extra={"artifact": where.url()}
            )
            return None
        manifest.check(fingerprint)
        return manifest
    except IndexArtifactInvalid as exc:
        logger.warning(
            "network index artifact in the bucket is unusable; building a new one to replace it",
            extra={"artifact": where.url(), "reason": str(exc)},
        )
    except AWS_CALL_ERRORS as exc:
        logger.warning(
            "cannot read the network index artifact; building it locally. Check the task "
            "role's s3:GetObject on the artifact prefix",
            extra={"artifact": where.url(), "reason": repr(exc)},
        )
    return None


def _open_local(folder: Path, fingerprint: str) -> NetworkIndex | None:
    if not folder.exists():
        return None
    try:
        return open_artifact(folder, fingerprint)
    except IndexArtifactInvalid as exc:
        logger.warning(
            "local network index artifact is unusable; fetching or rebuilding it",
            extra={"path": str(folder), "reason": str(exc)},
        )
        return None


async def _publish(client: Any, where: ArtifactLocation, folder: Path) -> None:
    """Upload an artifact the bucket lacks; a failure costs the next task a build only."""
    try:
        await upload_artifact(client, where, folder)
    except _UPLOAD_ERRORS as exc:
        logger.warning(
            "could not upload the network index artifact; every new task will build it. "
            "Grant the task role s3:PutObject on the artifact prefix, or run "
            "`python -m rnr.ops index build`",
            extra={"artifact": where.url(), "reason": repr(exc)},
        )


async def _download_or_none(
    client: Any, where: ArtifactLocation, manifest: Manifest, root: Path
) -> NetworkIndex | None:
    try:
        folder = await download_artifact(client, where, manifest, root)
        return await asyncio.to_thread(open_artifact, folder, manifest.fingerprint)
    except IndexArtifactInvalid as exc:
        logger.warning(
            "network index artifact in the bucket is corrupt; rebuilding and replacing it",
            extra={"artifact": where.url(), "reason": str(exc)},
        )
    except AWS_CALL_ERRORS as exc:
        logger.warning(
            "could not download the network index artifact; building it locally",
            extra={"artifact": where.url(), "reason": repr(exc)},
        )
    return None


async def load_network_index(
    client: Any,
    bucket: str,
    location: str,
    local_hydrofabric: Path,
    preferred_layer: str,
    cache_dir: Path,
) -> LoadedIndex:
    """The index of the hydrofabric at ``s3://bucket/location`` (already copied to
    ``local_hydrofabric``): memory-mapped from the local cache when it holds this
    version's artifact, else downloaded from the bucket, else built, uploaded and used."""
    source: SourceIdentity = await asyncio.to_thread(
        identify_source, local_hydrofabric, preferred_layer
    )
    fingerprint = source.fingerprint
    where = ArtifactLocation(bucket, index_prefix(location, source.attributes_layer))
    root = cache_dir / LOCAL_INDEX_FOLDER
    folder = artifact_dir(root, fingerprint)
    remote = await _remote_manifest(client, where, fingerprint)
    outcome = "cached"
    index = await asyncio.to_thread(_open_local, folder, fingerprint)
    if index is None and remote is not None:
        outcome = "downloaded"
        index = await _download_or_none(client, where, remote, root)
    if index is None:
        outcome = "built"
        logger.info("building the network index artifact", extra={"artifact": where.url()})
        folder = await asyncio.to_thread(build_artifact, source, root)
        index = await asyncio.to_thread(open_artifact, folder, fingerprint)
    if remote is None or outcome == "built":
        await _publish(client, where, folder)
    await asyncio.to_thread(remove_other_versions, root, folder)
    return LoadedIndex(index, outcome, fingerprint, folder)
