"""The network index artifact: built column by column, written, memory-mapped, and
giving exactly the segments of the index built in memory from whole tables; a stale,
foreign, truncated or corrupt artifact is refused."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from devstack import SAMPLE_HYDROFABRIC
from devstack import make_hydrofabric as maker
from rnr.hydro.index_build import ARRAY_DTYPES, INDEX_FORMAT_VERSION, check_index_arrays
from rnr.hydro.segments import (
    ATTRIBUTE_COLUMNS,
    FLOWPATH_COLUMNS,
    LAKE_COLUMNS,
    NETWORK_COLUMNS,
    NEXUS_COLUMNS,
    NetworkIndex,
    Segment,
    SegmentError,
)
from rnr.hydro_io.hydrofabric import (
    ATTRIBUTES_LAYER,
    HydrofabricReader,
    ParquetReader,
    attributes_layer,
    open_hydrofabric,
)
from rnr.hydro_io.index_artifact import (
    MANIFEST_NAME,
    IndexArtifactInvalid,
    Manifest,
    artifact_dir,
    build_artifact,
    identify_source,
    open_artifact,
    read_manifest,
    source_fingerprint,
    source_versions,
    verify_checksums,
)

SAMPLE_GPKG = SAMPLE_HYDROFABRIC / maker.GPKG_NAME
SAMPLE_PARQUET = SAMPLE_HYDROFABRIC / maker.PARQUET_DIR


def index_from_whole_tables(reader: HydrofabricReader) -> NetworkIndex:
    """The in-memory path: every table read whole with read(), then indexed."""
    layer = attributes_layer(reader)
    lakes = reader.read("lakes", LAKE_COLUMNS) if "lakes" in reader.layers() else None
    return NetworkIndex(
        network=reader.read("network", NETWORK_COLUMNS),
        flowpaths=reader.read("flowpaths", FLOWPATH_COLUMNS),
        nexus=reader.read("nexus", NEXUS_COLUMNS),
        attributes=reader.read(layer, ["id", *ATTRIBUTE_COLUMNS]),
        attributes_layer=layer,
        lakes=lakes,
    )


def outcome(index: NetworkIndex, reach_id: str) -> Segment | str:
    try:
        return index.extract_segment(reach_id)
    except SegmentError as error:
        return f"{type(error).__name__}: {error}"


def assert_same_segment(left: Segment | str, right: Segment | str) -> None:
    if isinstance(left, str) or isinstance(right, str):
        assert left == right
        return
    for field in fields(Segment):
        a, b = getattr(left, field.name), getattr(right, field.name)
        if field.name == "parameters":
            for name in a.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)
        elif isinstance(a, np.ndarray):
            assert a.dtype == b.dtype, field.name
            np.testing.assert_array_equal(a, b, field.name)
        else:
            assert a == b, field.name


def every_reach(location: Path) -> list[str]:
    with open_hydrofabric(location) as reader:
        hf_id = reader.read("network", ["hf_id"])["hf_id"]
    return sorted({str(int(value)) for value in hf_id[np.isfinite(hf_id)]})


def build(location: Path, root: Path, batch_rows: int = 1000) -> tuple[NetworkIndex, Path]:
    source = identify_source(location, "flowpath-attributes-ml")
    folder = build_artifact(source, root, batch_rows=batch_rows)
    return open_artifact(folder, source.fingerprint), folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    maker.generate(folder, flowpaths=30_000, formats="parquet")
    return folder / maker.PARQUET_DIR


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("location", [SAMPLE_GPKG, SAMPLE_PARQUET], ids=["gpkg", "parquet"])
def test_the_sample_round_trip_gives_the_in_memory_index_segments(
    location: Path, tmp_path: Path
) -> None:
    with open_hydrofabric(location) as reader:
        reference = index_from_whole_tables(reader)
    mapped, _ = build(location, tmp_path, batch_rows=7)  # many batches, odd boundaries
    reaches = every_reach(location)
    assert len(reaches) > 80
    for reach in reaches:
        assert_same_segment(outcome(mapped, reach), outcome(reference, reach))
    assert mapped.extract_segment("3121538").size == 13  # the generator's expectation


def test_a_generated_hydrofabric_round_trip_gives_the_same_segments(
    generated: Path, tmp_path: Path
) -> None:
    with open_hydrofabric(generated) as reader:
        reference = index_from_whole_tables(reader)
    mapped, _ = build(generated, tmp_path, batch_rows=4096)
    reaches = every_reach(generated)
    picks = np.random.default_rng(3).choice(len(reaches), 2000, replace=False)
    routed = 0
    for position in picks:
        left = outcome(mapped, reaches[position])
        assert_same_segment(left, outcome(reference, reaches[position]))
        routed += isinstance(left, Segment)
    assert routed > 1000
    for reach, expected in maker.EXPECTED_SEGMENTS.items():
        assert mapped.extract_segment(str(reach)).size == len(expected)


def test_the_artifact_is_memory_mapped_read_only(tmp_path: Path) -> None:
    mapped, folder = build(SAMPLE_PARQUET, tmp_path)
    arrays = mapped.arrays
    assert set(arrays) == set(ARRAY_DTYPES)
    for name, array in arrays.items():
        assert isinstance(array.base, np.memmap), name
        assert not array.flags.writeable, name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MANIFEST_NAME, *(f"{name}.npy" for name in ARRAY_DTYPES)]
    )


def test_the_build_is_deterministic_and_leaves_no_temporary_folder(tmp_path: Path) -> None:
    _, first = build(SAMPLE_PARQUET, tmp_path / "a")
    _, second = build(SAMPLE_PARQUET, tmp_path / "b", batch_rows=50)
    assert read_manifest(first).files == read_manifest(second).files  # same checksums
    assert [p.name for p in first.parent.iterdir()] == [first.name]


def test_a_failed_build_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    broken = tmp_path / "hydrofabric"
    shutil.copytree(SAMPLE_PARQUET, broken)
    table = pq.read_table(broken / "flowpaths.parquet")
    pq.write_table(table.drop_columns(["toid"]), broken / "flowpaths.parquet")
    source = identify_source(broken, "flowpath-attributes-ml")
    with pytest.raises(ValueError, match="toid"):
        build_artifact(source, tmp_path / "index")
    assert not artifact_dir(tmp_path / "index", source.fingerprint).exists()
    assert not list(artifact_dir(tmp_path / "index", source.fingerprint).parent.iterdir())


# ---------------------------------------------------------------- fingerprint


def test_the_fingerprint_follows_the_source_version_and_layer(tmp_path: Path) -> None:
    copy = tmp_path / "hydrofabric"
    shutil.copytree(SAMPLE_PARQUET, copy)
    versions = source_versions(copy)
    assert set(versions) == {p.name for p in SAMPLE_PARQUET.glob("*.parquet")}
    first = identify_source(copy, "flowpath-attributes-ml")
    assert identify_source(copy, ATTRIBUTES_LAYER).fingerprint != first.fingerprint
    # The cache's .etag file is the version when present (no hashing of the file).
    (copy / "flowpaths.parquet.etag").write_text('"abc123"')
    assert source_versions(copy)["flowpaths.parquet"] == "abc123"
    assert identify_source(copy, "flowpath-attributes-ml").fingerprint != first.fingerprint
    assert source_fingerprint({"a": "1"}, "x") == source_fingerprint({"a": "1"}, "x")


def test_a_changed_layer_makes_the_artifact_stale(tmp_path: Path) -> None:
    copy = tmp_path / "hydrofabric"
    shutil.copytree(SAMPLE_PARQUET, copy)
    _, folder = build(copy, tmp_path / "index")
    old = identify_source(copy, "flowpath-attributes-ml").fingerprint
    table = pq.read_table(copy / "flowpaths.parquet")
    lengths = pa.compute.multiply(table["lengthkm"], 2.0)
    table = table.set_column(table.schema.get_field_index("lengthkm"), "lengthkm", lengths)
    pq.write_table(table, copy / "flowpaths.parquet")
    new = identify_source(copy, "flowpath-attributes-ml").fingerprint
    assert new != old
    with pytest.raises(IndexArtifactInvalid, match="another hydrofabric version"):
        open_artifact(folder, new)


# ---------------------------------------------------------------- refusal


@pytest.fixture
def artifact(tmp_path: Path) -> tuple[Path, str]:
    source = identify_source(SAMPLE_PARQUET, "flowpath-attributes-ml")
    return build_artifact(source, tmp_path), source.fingerprint


def rewrite_manifest(folder: Path, **changes: object) -> None:
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    raw.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))


def test_another_format_version_is_refused(artifact: tuple[Path, str]) -> None:
    folder, fingerprint = artifact
    rewrite_manifest(folder, format_version=INDEX_FORMAT_VERSION + 1)
    with pytest.raises(IndexArtifactInvalid, match="format version"):
        open_artifact(folder, fingerprint)


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"format": "something else"}', '{"format": "rnr-network-index"}']
)
def test_an_unreadable_manifest_is_refused(artifact: tuple[Path, str], text: str) -> None:
    folder, fingerprint = artifact
    (folder / MANIFEST_NAME).write_text(text)
    with pytest.raises(IndexArtifactInvalid):
        open_artifact(folder, fingerprint)


def test_a_missing_manifest_or_file_is_refused(artifact: tuple[Path, str]) -> None:
    folder, fingerprint = artifact
    (folder / "net_divide.npy").unlink()
    with pytest.raises(IndexArtifactInvalid, match=r"net_divide\.npy"):
        open_artifact(folder, fingerprint)
    (folder / MANIFEST_NAME).unlink()
    with pytest.raises(IndexArtifactInvalid, match="no readable manifest"):
        open_artifact(folder, fingerprint)


def test_a_truncated_file_is_refused(artifact: tuple[Path, str]) -> None:
    folder, fingerprint = artifact
    path = folder / "fp_key.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(IndexArtifactInvalid, match=r"fp_key\.npy is"):
        open_artifact(folder, fingerprint)


def test_a_file_of_another_shape_is_refused_even_at_the_same_size(
    artifact: tuple[Path, str],
) -> None:
    folder, fingerprint = artifact
    keys = np.load(folder / "fp_key.npy")
    np.save(folder / "fp_key.npy", keys.astype("<f8"))  # same bytes, other dtype
    with pytest.raises(IndexArtifactInvalid, match=r"fp_key\.npy holds <f8"):
        open_artifact(folder, fingerprint)


def test_a_flipped_byte_fails_the_checksums(artifact: tuple[Path, str]) -> None:
    folder, _ = artifact
    manifest = read_manifest(folder)
    verify_checksums(folder, manifest)
    path = folder / "fp_down.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexArtifactInvalid, match=r"fp_down\.npy does not match"):
        verify_checksums(folder, manifest)


def test_the_manifest_round_trips(artifact: tuple[Path, str]) -> None:
    folder, fingerprint = artifact
    manifest = read_manifest(folder)
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert manifest.fingerprint == fingerprint and manifest.flowpaths == 45
    assert list(manifest.prefixes.values()) == ["wb"]  # the only prefix of flowpath ids


def test_index_arrays_must_be_exactly_the_index_s() -> None:
    with open_hydrofabric(SAMPLE_PARQUET) as reader:
        arrays = NetworkIndex.from_reader(reader, attributes_layer(reader)).arrays
    check_index_arrays(arrays)
    with pytest.raises(ValueError, match="missing \\['fp_key'\\]"):
        check_index_arrays({k: v for k, v in arrays.items() if k != "fp_key"})
    with pytest.raises(ValueError, match="fp_order is float64"):
        check_index_arrays({**arrays, "fp_order": arrays["fp_order"].astype(float)})
    with pytest.raises(ValueError, match="fp_down has 44 rows"):
        check_index_arrays({**arrays, "fp_down": arrays["fp_down"][:-1]})


# ---------------------------------------------------------------- batched reads


@pytest.mark.parametrize("location", [SAMPLE_GPKG, SAMPLE_PARQUET], ids=["gpkg", "parquet"])
@pytest.mark.parametrize("layer", ["flowpaths", "network", "nexus", "lakes"])
def test_batches_are_the_whole_read_in_order(location: Path, layer: str) -> None:
    with open_hydrofabric(location) as reader:
        for column in reader.columns(layer):
            if column in {"geom", "geometry", "fid"}:
                continue
            whole = reader.read(layer, [column])[column]
            assert reader.row_count(layer) == whole.size
            for as_bytes in (False, True):
                parts = list(reader.read_batches(layer, column, 5, text_as_bytes=as_bytes))
                assert all(part.size <= 5 for part in parts)
                joined = np.concatenate(parts) if parts else np.empty(0)
                if joined.dtype.kind == "S":
                    expected = np.array([b"" if v is None else v.encode() for v in whole])
                    np.testing.assert_array_equal(joined, expected, f"{layer}.{column}")
                else:
                    assert [str(v) for v in joined] == [str(v) for v in whole], column


def test_text_as_bytes_handles_nulls_slices_and_dictionaries(tmp_path: Path) -> None:
    values = pa.array(["wb-1", None, "nex-12345", "", "cat-7"] * 3)
    table = pa.table({"text": values, "coded": values.dictionary_encode()})
    pq.write_table(table, tmp_path / "layer.parquet", row_group_size=4)
    reader = ParquetReader(tmp_path)
    for column in ("text", "coded"):
        got = np.concatenate(list(reader.read_batches("layer", column, 3, text_as_bytes=True)))
        assert got.tolist() == [b"wb-1", b"", b"nex-12345", b"", b"cat-7"] * 3
    with pytest.raises(ValueError, match="batch_rows"):
        list(reader.read_batches("layer", "text", 0))
