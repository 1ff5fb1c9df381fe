"""The network index as files on disk: built once per hydrofabric version, memory-mapped.

Why: indexing a national hydrofabric (3 million flowpaths) takes seconds and more
memory than the index itself; a worker that memory-maps a prebuilt index is ready at
once and holds in memory only the pages its extractions touch.

An artifact is a folder holding one NumPy ``.npy`` file per index array
(:data:`rnr.hydro.index_build.ARRAY_DTYPES`) and ``manifest.json``, which names the
format and its version, the **fingerprint** of the source hydrofabric it was built
from, the attributes layer, the id prefixes, and each file's size and SHA-256. An
artifact whose manifest does not match what the reader expects (another format version,
another fingerprint, a missing or resized file, a checksum that differs) raises
:class:`IndexArtifactInvalid` and must be rebuilt, never trusted.

The fingerprint is a SHA-256 over the format version, the attributes layer and each
source file's version: its S3 ETag (the ``.etag`` file the hydrofabric cache keeps next
to each download) or, for a file that came from elsewhere, the MD5 of its content,
which is what S3 reports as the ETag of an object uploaded in one part.

Writes are atomic: the files go to a temporary folder beside the target, which is
renamed into place once complete (manifest included), so a reader sees a whole
artifact or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from rnr.hydro.index_build import ARRAY_DTYPES, INDEX_FORMAT_VERSION, build_index_arrays
from rnr.hydro.segments import READ_BATCH_ROWS, NetworkIndex, ReaderSource
from rnr.hydro_io.hydrofabric import attributes_layer, open_hydrofabric

logger = logging.getLogger(__name__)

FORMAT_NAME = "rnr-network-index"
MANIFEST_NAME = "manifest.json"
ETAG_SUFFIX = ".etag"  # what rnr.storage.hydrofabric_cache writes beside each download
_HASH_CHUNK = 8 * 1024 * 1024


class IndexArtifactInvalid(ValueError):
    """An artifact that must not be used (stale, foreign, incomplete or corrupt); the
    message says which, for the operator's log line."""


@dataclass(frozen=True)
class ArrayFile:
    """One ``.npy`` file of an artifact, as its manifest describes it."""

    name: str
    dtype: str
    length: int
    size_bytes: int
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.npy"


@dataclass(frozen=True)
class Manifest:
    """What an artifact holds and what it was built from."""

    fingerprint: str
    attributes_layer: str
    prefixes: dict[int, str]
    flowpaths: int
    files: tuple[ArrayFile, ...]
    format_version: int = INDEX_FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT_NAME,
                "format_version": self.format_version,
                "fingerprint": self.fingerprint,
                "attributes_layer": self.attributes_layer,
                "prefixes": {str(code): text for code, text in sorted(self.prefixes.items())},
                "flowpaths": self.flowpaths,
                "files": [file.__dict__ for file in self.files],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse a manifest; IndexArtifactInvalid for anything that is not one of ours."""
        try:
            raw = json.loads(text)
            if raw["format"] != FORMAT_NAME:
                raise IndexArtifactInvalid(f"not a network index manifest ({raw['format']!r})")
            return cls(
                fingerprint=str(raw["fingerprint"]),
                attributes_layer=str(raw["attributes_layer"]),
                prefixes={int(code): str(text) for code, text in raw["prefixes"].items()},
                flowpaths=int(raw["flowpaths"]),
                files=tuple(ArrayFile(**entry) for entry in raw["files"]),
                format_version=int(raw["format_version"]),
            )
        except IndexArtifactInvalid:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise IndexArtifactInvalid(f"unreadable manifest: {error!r}") from error

    def check(self, fingerprint: str) -> None:
        """Raise IndexArtifactInvalid unless this is an artifact of this format version
        built from the source whose fingerprint is given."""
        if self.format_version != INDEX_FORMAT_VERSION:
            raise IndexArtifactInvalid(
                f"format version {self.format_version}, this code reads {INDEX_FORMAT_VERSION}"
            )
        if self.fingerprint != fingerprint:
            raise IndexArtifactInvalid(
                f"built from another hydrofabric version (fingerprint {self.fingerprint[:12]}…,"
                f" the hydrofabric's is {fingerprint[:12]}…)"
            )
        names = sorted(file.name for file in self.files)
        if names != sorted(ARRAY_DTYPES):
            raise IndexArtifactInvalid(f"holds the arrays {names}, not the index's")


# ------------------------------------------------------------------ fingerprint


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_files(location: Path) -> list[Path]:
    """The files a hydrofabric reader reads at ``location`` (a .gpkg, or a folder)."""
    if location.is_dir():
        return sorted(location.glob("*.parquet"))
    return [location]


def source_versions(location: Path) -> dict[str, str]:
    """File name -> version (its ETag from the cache's ``.etag`` file, else its MD5)."""
    versions: dict[str, str] = {}
    for path in source_files(location):
        etag_file = path.with_name(path.name + ETAG_SUFFIX)
        if etag_file.is_file():
            versions[path.name] = etag_file.read_text().strip().strip('"')
        else:
            versions[path.name] = _md5_of(path)
    return versions


def source_fingerprint(versions: Mapping[str, str], attributes_layer: str) -> str:
    """The fingerprint of an index built from these source versions with this layer."""
    identity = {
        "format": FORMAT_NAME,
        "format_version": INDEX_FORMAT_VERSION,
        "attributes_layer": attributes_layer,
        "sources": dict(sorted(versions.items())),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SourceIdentity:
    """A local hydrofabric, the attributes layer its index uses, and the fingerprint."""

    location: Path
    attributes_layer: str
    fingerprint: str


def identify_source(location: Path, preferred_layer: str) -> SourceIdentity:
    """Resolve the attributes layer (the ``-ml`` fallback rule) and fingerprint."""
    with open_hydrofabric(location) as reader:
        layer = attributes_layer(reader, preferred_layer)
    return SourceIdentity(location, layer, source_fingerprint(source_versions(location), layer))


# ------------------------------------------------------------------ writing


class _HashingFile:
    """A write-only file that hashes what passes through (one pass over each array)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += view.nbytes
        return self._handle.write(view)


class _ArraySink:
    """Writes each array the build hands over as ``<name>.npy`` and forgets it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[ArrayFile] = []

    def __call__(self, name: str, array: Any) -> None:
        array = np.ascontiguousarray(array, dtype=ARRAY_DTYPES[name])
        with (self.folder / f"{name}.npy").open("wb") as handle:
            hashing = _HashingFile(handle)
            np.lib.format.write_array(hashing, array, allow_pickle=False)
        self.files.append(
            ArrayFile(
                name, array.dtype.str, int(array.shape[0]), hashing.size, hashing.digest.hexdigest()
            )
        )


def artifact_dir(root: Path, fingerprint: str) -> Path:
    """Where the artifact of a fingerprint lives under a cache root."""
    return root / f"v{INDEX_FORMAT_VERSION}" / fingerprint


def build_artifact(
    source: SourceIdentity, root: Path, *, batch_rows: int = READ_BATCH_ROWS
) -> Path:
    """Build the index of ``source`` into ``artifact_dir(root, fingerprint)``, column by
    column, straight to files (the build never holds the whole index in memory)."""
    target = artifact_dir(root, source.fingerprint)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        sink = _ArraySink(temporary)
        with open_hydrofabric(source.location) as reader:
            columns = ReaderSource(reader, source.attributes_layer, batch_rows)
            prefixes = build_index_arrays(columns, sink)
        flowpaths = next(file.length for file in sink.files if file.name == "fp_key")
        manifest = Manifest(
            source.fingerprint, source.attributes_layer, prefixes, flowpaths, tuple(sink.files)
        )
        (temporary / MANIFEST_NAME).write_text(manifest.to_json())
        install(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def install(temporary: Path, target: Path) -> None:
    """Rename a complete artifact folder into place. If another process got there first
    (two workers sharing a cache), keep theirs: both are built from the same source."""
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)  # a leftover we no longer trust
    try:
        os.rename(temporary, target)
    except OSError:
        if not (target / MANIFEST_NAME).is_file():
            raise


def remove_other_versions(root: Path, keep: Path) -> None:
    """Delete the artifacts of other fingerprints and format versions under ``root``."""
    if not root.is_dir():
        return
    for version in root.iterdir():
        for artifact in version.iterdir() if version.is_dir() else ():
            if artifact != keep and not artifact.name.startswith("."):
                shutil.rmtree(artifact, ignore_errors=True)


# ------------------------------------------------------------------ reading


def read_manifest(folder: Path) -> Manifest:
    try:
        text = (folder / MANIFEST_NAME).read_text()
    except OSError as error:
        raise IndexArtifactInvalid(f"no readable manifest in {folder}: {error}") from error
    return Manifest.from_json(text)


def verify_checksums(folder: Path, manifest: Manifest) -> None:
    """Hash every file against the manifest (IndexArtifactInvalid on the first that
    differs); reads the whole artifact, so it is done when a copy enters the cache."""
    for entry in manifest.files:
        digest = hashlib.sha256()
        with (folder / entry.file_name).open("rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != entry.sha256:
            raise IndexArtifactInvalid(f"{entry.file_name} does not match its checksum")


def open_artifact(folder: Path, fingerprint: str) -> NetworkIndex:
    """The index in ``folder``, memory-mapped (read-only); IndexArtifactInvalid when the
    artifact is of another version or source, or a file is missing or of another size.

    Content is not hashed here (that would read every page): copies are verified when
    they enter the cache (:func:`verify_checksums`), and written atomically.
    """
    manifest = read_manifest(folder)
    manifest.check(fingerprint)
    arrays: dict[str, np.ndarray] = {}
    for entry in manifest.files:
        path = folder / entry.file_name
        try:
            size = path.stat().st_size
            if size != entry.size_bytes:
                raise IndexArtifactInvalid(
                    f"{entry.file_name} is {size} bytes, not {entry.size_bytes}"
                )
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except OSError as error:
            raise IndexArtifactInvalid(f"cannot read {entry.file_name}: {error}") from error
        except ValueError as error:
            raise IndexArtifactInvalid(
                f"{entry.file_name} is not a NumPy array file: {error}"
            ) from error
        if array.dtype.str != entry.dtype or array.shape != (entry.length,):
            raise IndexArtifactInvalid(
                f"{entry.file_name} holds {array.dtype.str}{array.shape}, "
                f"the manifest says {entry.dtype}({entry.length},)"
            )
        arrays[entry.name] = array
    try:
        return NetworkIndex.from_arrays(arrays, manifest.prefixes, manifest.attributes_layer)
    except ValueError as error:
        raise IndexArtifactInvalid(str(error)) from error
