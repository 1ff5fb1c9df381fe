"""Read NextGen hydrofabric v2.2 layers from a GeoPackage or a folder of Parquet files.

This is the only code that touches hydrofabric files (RNR_SPEC section 3). A national
hydrofabric is large (flowpaths ~1 GB as Parquet), so every read names the columns it
needs and may carry equality / membership filters; both are pushed down to the storage
(an SQL ``WHERE`` for a GeoPackage, pyarrow dataset filters and column projection for
Parquet), so a file is never read whole.

A read returns a :data:`Table`: one numpy array per requested column, all of one length,
with the same dtypes whatever the backend:

- integers without nulls: ``int64``; integers with nulls and all reals: ``float64``
  (null = NaN);
- booleans: ``bool`` (``object`` holding ``None`` when nulls are present);
- text: ``object`` arrays of ``str`` (null = ``None``);
- geometry: ``object`` arrays of WKB ``bytes`` (the GeoPackage header stripped).

Row order is the storage's scan order and is not otherwise specified.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

if TYPE_CHECKING:
    import pyarrow.dataset as ds

Scalar: TypeAlias = str | int | float | None
FilterValue: TypeAlias = Scalar | Sequence[Scalar] | npt.NDArray[Any]
Filters: TypeAlias = Mapping[str, FilterValue]
Table: TypeAlias = dict[str, npt.NDArray[Any]]

ATTRIBUTES_LAYER_ML = "flowpath-attributes-ml"
ATTRIBUTES_LAYER = "flowpath-attributes"

# GeoPackage geometry blob: "GP", version, flags, srs_id (int32), then an optional
# envelope whose size the flags' bits 1-3 give (GeoPackage 1.3, clause 2.1.3).
_GPKG_MAGIC = b"GP"
_GPKG_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_GPKG_GEOMETRY_TYPES = frozenset(
    {
        "GEOMETRY",
        "POINT",
        "LINESTRING",
        "POLYGON",
        "MULTIPOINT",
        "MULTILINESTRING",
        "MULTIPOLYGON",
        "GEOMETRYCOLLECTION",
        "CIRCULARSTRING",
        "COMPOUNDCURVE",
        "CURVEPOLYGON",
        "MULTICURVE",
        "MULTISURFACE",
        "CURVE",
        "SURFACE",
    }
)
# SQLite >= 3.32 allows 32766 bound parameters per statement; stay well below.
_SQL_PARAMETERS_PER_QUERY = 30_000


class HydrofabricSchemaError(ValueError):
    """A layer or column the caller asked for is not in the hydrofabric."""


def strip_gpkg_header(blob: bytes) -> bytes:
    """The WKB inside a GeoPackage geometry blob (header and envelope removed)."""
    if len(blob) < 8 or blob[:2] != _GPKG_MAGIC:
        raise ValueError("not a GeoPackage geometry blob (no 'GP' magic)")
    envelope = (blob[3] >> 1) & 0b111
    if envelope not in _GPKG_ENVELOPE_BYTES:
        raise ValueError(f"GeoPackage geometry blob has an invalid envelope code {envelope}")
    return bytes(blob[8 + _GPKG_ENVELOPE_BYTES[envelope] :])


def _is_list(value: FilterValue) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


def _python_value(value: Any) -> Scalar:
    """numpy scalars as plain Python values (sqlite3 and pyarrow want those)."""
    return value.item() if isinstance(value, np.generic) else value


class HydrofabricReader(ABC):
    """One hydrofabric, read layer by layer with projection and filters pushed down.

    Implementations: :class:`GeoPackageReader` and :class:`ParquetReader`;
    :func:`open_hydrofabric` picks one from the path.
    """

    def __init__(self, location: str) -> None:
        self.location = location

    @abstractmethod
    def layers(self) -> list[str]:
        """Layer names, in the storage's own order (GeoPackage: gpkg_contents order)."""

    @abstractmethod
    def columns(self, layer: str) -> list[str]:
        """Column names of ``layer``."""

    @abstractmethod
    def geometry_column(self, layer: str) -> str | None:
        """The geometry column of ``layer``, or None for an attributes-only layer."""

    @abstractmethod
    def _read(self, layer: str, columns: list[str], filters: Filters) -> Table: ...

    @abstractmethod
    def row_count(self, layer: str) -> int:
        """Rows in ``layer`` (from metadata where the storage keeps it)."""

    @abstractmethod
    def _read_batches(
        self, layer: str, column: str, batch_rows: int, text_as_bytes: bool
    ) -> Iterator[npt.NDArray[Any]]: ...

    def read_batches(
        self, layer: str, column: str, batch_rows: int = 262_144, *, text_as_bytes: bool = False
    ) -> Iterator[npt.NDArray[Any]]:
        """One column of ``layer``, whole, as arrays of at most ``batch_rows`` values in
        the order :meth:`read` gives: a national layer's column never held at once.

        ``text_as_bytes`` lets a backend give a text column as a fixed-width ``bytes``
        array (null = ``b""``) instead of one Python string per value; for identifier
        columns of millions of rows that is several times faster and a fraction of the
        memory.
        """
        if batch_rows < 1:
            raise ValueError("batch_rows must be at least 1")
        self._check_columns(layer, [column])
        return self._read_batches(layer, column, batch_rows, text_as_bytes)

    def read(self, layer: str, columns: Sequence[str], filters: Filters | None = None) -> Table:
        """Rows of ``layer`` matching every filter, projected on ``columns``.

        A filter maps a column to a value (equality; ``None`` means "is null") or to a
        list of values (membership). Values are compared with the column's own type, so
        a reach id may be given as ``"3121538"`` or ``3121538`` whatever the storage holds.
        """
        wanted = list(dict.fromkeys(columns))
        if not wanted:
            raise ValueError("read() needs at least one column")
        self._check_columns(layer, [*wanted, *(filters or {})])
        return self._read(layer, wanted, filters or {})

    def _check_layer(self, layer: str) -> None:
        available = self.layers()
        if layer not in available:
            raise HydrofabricSchemaError(
                f"hydrofabric {self.location} has no layer {layer!r}; "
                f"layers: {', '.join(available) or '(none)'}"
            )

    def _check_columns(self, layer: str, names: Sequence[str]) -> None:
        self._check_layer(layer)
        available = self.columns(layer)
        missing = [name for name in names if name not in available]
        if missing:
            raise HydrofabricSchemaError(
                f"layer {layer!r} of {self.location} has no column "
                f"{', '.join(repr(name) for name in missing)}; columns: {', '.join(available)}"
            )

    def close(self) -> None:  # noqa: B027 - optional hook, most readers hold nothing
        """Release what the reader holds open."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


# ---------------------------------------------------------------------------- GeoPackage


def _column_kind(declared_type: str) -> str:
    """SQLite's affinity rules (plus GeoPackage's BOOLEAN and geometry types)."""
    upper = declared_type.upper().strip()
    if upper in _GPKG_GEOMETRY_TYPES:
        return "geometry"
    if upper == "BOOLEAN":
        return "bool"
    if "INT" in upper:
        return "integer"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")) or upper.startswith("DATE"):
        return "text"
    if "BLOB" in upper or not upper:
        return "blob"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return "numeric"


def _object_array(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _sqlite_column(values: Sequence[Any], kind: str) -> npt.NDArray[Any]:
    """One column of SQLite values as the numpy array the module docstring promises."""
    if kind == "geometry":
        return _object_array([None if v is None else strip_gpkg_header(v) for v in values])
    if kind in ("text", "blob"):
        return _object_array(values)
    has_null = any(v is None for v in values)
    try:
        if kind == "bool":
            return _object_array(values) if has_null else np.array(values, dtype=bool)
        if kind == "integer" and not has_null:
            return np.array(values, dtype=np.int64).reshape(len(values))
        return np.array(values, dtype=np.float64).reshape(len(values))
    except (TypeError, ValueError, OverflowError):
        # SQLite's typing is per value: a numeric column may hold text. Keep it as is.
        return _object_array(values)


class GeoPackageReader(HydrofabricReader):
    """A hydrofabric GeoPackage, read with sqlite3 (read-only; no GDAL needed).

    One connection, shared between threads behind a lock: queries are short because
    every read is filtered and projected.
    """

    def __init__(self, path: str | Path) -> None:
        resolved = Path(path).resolve()
        if not resolved.is_file():
            raise FileNotFoundError(f"no GeoPackage at {resolved}")
        super().__init__(str(resolved))
        self._connection = sqlite3.connect(
            f"{resolved.as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        self._lock = threading.Lock()
        try:
            rows = self._query("SELECT table_name FROM gpkg_contents ORDER BY rowid")
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise ValueError(f"{resolved} is not a GeoPackage: {error}") from error
        self._layers = [str(row[0]) for row in rows]
        self._schemas: dict[str, dict[str, str]] = {}
        self._geometry = {
            str(table): str(column)
            for table, column in self._query(
                "SELECT table_name, column_name FROM gpkg_geometry_columns"
            )
        }

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def layers(self) -> list[str]:
        return list(self._layers)

    def _schema(self, layer: str) -> dict[str, str]:
        """Column name -> declared SQL type."""
        self._check_layer(layer)
        if layer not in self._schemas:
            rows = self._query(f"PRAGMA table_info({_quote(layer)})")
            self._schemas[layer] = {str(row[1]): str(row[2] or "") for row in rows}
        return self._schemas[layer]

    def columns(self, layer: str) -> list[str]:
        return list(self._schema(layer))

    def geometry_column(self, layer: str) -> str | None:
        self._check_layer(layer)
        return self._geometry.get(layer)

    def _read(self, layer: str, columns: list[str], filters: Filters) -> Table:
        schema = self._schema(layer)
        kinds = [
            "geometry" if name == self._geometry.get(layer) else _column_kind(schema[name])
            for name in columns
        ]
        rows: list[tuple[Any, ...]] = []
        for where, parameters in _sql_conditions(filters):
            sql = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(layer)}{where}"
            rows.extend(self._query(sql, parameters))
        values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
        return {
            name: _sqlite_column(column, kind)
            for name, column, kind in zip(columns, values, kinds, strict=True)
        }

    def row_count(self, layer: str) -> int:
        self._check_layer(layer)
        return int(self._query(f"SELECT COUNT(*) FROM {_quote(layer)}")[0][0])

    def _read_batches(
        self, layer: str, column: str, batch_rows: int, text_as_bytes: bool
    ) -> Iterator[npt.NDArray[Any]]:
        # text_as_bytes is only a permission: sqlite3 makes the Python strings anyway.
        kind = (
            "geometry"
            if column == self._geometry.get(layer)
            else _column_kind(self._schema(layer)[column])
        )
        with self._lock:
            cursor = self._connection.execute(f"SELECT {_quote(column)} FROM {_quote(layer)}")
        try:
            while True:
                with self._lock:
                    rows = cursor.fetchmany(batch_rows)
                if not rows:
                    return
                yield _sqlite_column([row[0] for row in rows], kind)
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _quote(identifier: str) -> str:
    """An SQL identifier, quoted (layer names hold '-', columns include ``order``)."""
    return '"' + identifier.replace('"', '""') + '"'


def _sql_conditions(filters: Filters) -> Iterator[tuple[str, list[Scalar]]]:
    """WHERE clauses with their parameters; a long list is split over several queries.

    Only the longest list is split, so each query matches a disjoint set of rows.
    """
    scalars: list[tuple[str, list[Scalar]]] = []
    lists: list[tuple[str, list[Scalar]]] = []
    for name, value in filters.items():
        column = _quote(name)
        if _is_list(value):
            lists.append((column, [_python_value(v) for v in value]))  # type: ignore[union-attr]
            continue
        scalar = _python_value(value)
        scalars.append((f"{column} IS NULL", []) if scalar is None else (f"{column} = ?", [scalar]))
    lists.sort(key=lambda item: len(item[1]))
    fixed = sum(len(values) for _, values in scalars) + sum(len(v) for _, v in lists[:-1])
    if fixed >= _SQL_PARAMETERS_PER_QUERY:
        raise ValueError("filters hold too many values for one query; split the read")
    chunk = _SQL_PARAMETERS_PER_QUERY - fixed
    pieces: list[list[Scalar]] = [[]]
    if lists:
        longest = lists[-1][1]
        pieces = [longest[i : i + chunk] for i in range(0, len(longest), chunk)] or [[]]
    for piece in pieces:
        where = [clause for clause, _ in scalars]
        parameters = [value for _, values in scalars for value in values]
        for index, (column, values) in enumerate(lists):
            chosen = piece if index == len(lists) - 1 else values
            where.append(_membership(column, chosen))
            parameters.extend(v for v in chosen if v is not None)
        yield (" WHERE " + " AND ".join(where) if where else ""), parameters


def _membership(column: str, values: Sequence[Scalar]) -> str:
    present = [v for v in values if v is not None]
    clauses = [f"{column} IN ({', '.join('?' * len(present))})"] if present else []
    if len(present) < len(values):
        clauses.append(f"{column} IS NULL")
    return "(" + " OR ".join(clauses) + ")" if clauses else "0"


# ---------------------------------------------------------------------------- Parquet


def _arrow_column(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """An Arrow column as the numpy array the module docstring promises."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_boolean(column.type) and column.null_count:
        return _object_array(column.to_pylist())
    array = column.to_numpy()
    if pa.types.is_integer(column.type) and not column.null_count:
        return array.astype(np.int64, copy=False)
    if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
        return array.astype(np.float64, copy=False)
    return array


def _fixed_width_bytes(values: pa.Array) -> npt.NDArray[np.bytes_]:
    """A string array as numpy fixed-width bytes (null = ``b""``), straight from Arrow's
    offsets and data buffers: no Python object per value."""
    values = values.cast(pa.large_string())
    count = len(values)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int64, count=count + 1, offset=8 * values.offset
    )
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    if values.null_count:
        lengths[np.asarray(values.is_null())] = 0
    width = max(int(lengths.max(initial=0)), 1)
    chars = np.zeros((count, width), dtype=np.uint8)
    starts = offsets[:-1]
    for position in range(width):  # a handful of passes: identifiers are short
        rows = np.flatnonzero(lengths > position)
        chars[rows, position] = data[starts[rows] + position]
    return chars.view(f"S{width}").reshape(count)


def _arrow_values(values: Sequence[Scalar], arrow_type: pa.DataType, name: str) -> pa.Array:
    """Filter values as an Arrow array of the column's type."""
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        pass
    try:
        return pa.array(values).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise ValueError(f"filter values for {name!r} are not {arrow_type}: {error}") from error


class ParquetReader(HydrofabricReader):
    """A folder holding one ``<layer>.parquet`` per layer (a file, or a folder of parts).

    ``filesystem`` is any pyarrow filesystem (local by default; S3 works the same), and
    the datasets are opened once and cached, so repeated reads cost only the scan.
    """

    def __init__(self, root: str | Path, filesystem: pafs.FileSystem | None = None) -> None:
        self._filesystem = filesystem or pafs.LocalFileSystem()
        root_path = str(Path(root).resolve()) if filesystem is None else str(root).rstrip("/")
        super().__init__(root_path)
        info = self._filesystem.get_file_info(root_path)
        if info.type != pafs.FileType.Directory:
            raise FileNotFoundError(f"no Parquet hydrofabric folder at {root_path}")
        entries = self._filesystem.get_file_info(pafs.FileSelector(root_path))
        self._paths = {
            entry.base_name.removesuffix(".parquet"): entry.path
            for entry in sorted(entries, key=lambda e: e.base_name)
            if entry.base_name.endswith(".parquet")
        }
        self._datasets: dict[str, ds.Dataset] = {}
        self._lock = threading.Lock()

    def layers(self) -> list[str]:
        return list(self._paths)

    def _dataset(self, layer: str) -> ds.Dataset:
        self._check_layer(layer)
        with self._lock:
            if layer not in self._datasets:
                # Imported here: pyarrow.dataset pulls in pandas (about 150 ms), which
                # callers reading no Parquet layer (the post-processor's runs) never pay.
                import pyarrow.dataset as ds

                self._datasets[layer] = ds.dataset(
                    self._paths[layer], format="parquet", filesystem=self._filesystem
                )
            return self._datasets[layer]

    def columns(self, layer: str) -> list[str]:
        return list(self._dataset(layer).schema.names)

    def geometry_column(self, layer: str) -> str | None:
        schema = self._dataset(layer).schema
        metadata = schema.metadata or {}
        if b"geo" in metadata:
            primary = json.loads(metadata[b"geo"]).get("primary_column")
            if primary in schema.names:
                return str(primary)
        if "geometry" in schema.names and pa.types.is_binary(schema.field("geometry").type):
            return "geometry"
        return None

    def _read(self, layer: str, columns: list[str], filters: Filters) -> Table:
        dataset = self._dataset(layer)
        expression = self._expression(dataset.schema, filters)
        table = dataset.to_table(columns=columns, filter=expression)
        return {name: _arrow_column(table.column(name)) for name in columns}

    def row_count(self, layer: str) -> int:
        return int(self._dataset(layer).count_rows())

    def _read_batches(
        self, layer: str, column: str, batch_rows: int, text_as_bytes: bool
    ) -> Iterator[npt.NDArray[Any]]:
        # One thread, no read-ahead: batches come in the order to_table() would give,
        # and only the batch being converted is held.
        batches = self._dataset(layer).to_batches(
            columns=[column], batch_size=batch_rows, use_threads=False
        )
        for batch in batches:
            if not batch.num_rows:
                continue
            values = batch.column(0)
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            if text_as_bytes and (
                pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
            ):
                yield _fixed_width_bytes(values)
            else:
                yield _arrow_column(pa.chunked_array([values]))

    @staticmethod
    def _expression(schema: pa.Schema, filters: Filters) -> pc.Expression | None:
        expression: pc.Expression | None = None
        for name, value in filters.items():
            arrow_type = schema.field(name).type
            if pa.types.is_dictionary(arrow_type):
                arrow_type = arrow_type.value_type
            field = pc.field(name)
            if _is_list(value):
                values = [_python_value(v) for v in value]  # type: ignore[union-attr]
                present = [v for v in values if v is not None]
                condition = field.isin(_arrow_values(present, arrow_type, name))
                if len(present) < len(values):
                    condition = condition | field.is_null()
            else:
                scalar = _python_value(value)
                if scalar is None:
                    condition = field.is_null()
                else:
                    condition = field == _arrow_values([scalar], arrow_type, name)[0]
            expression = condition if expression is None else expression & condition
        return expression


# ---------------------------------------------------------------------------- choosing


def open_hydrofabric(path: str | Path) -> HydrofabricReader:
    """A reader for ``path``: a ``.gpkg`` file or a folder of ``<layer>.parquet``."""
    location = Path(path)
    if location.is_dir():
        return ParquetReader(location)
    if location.is_file():
        return GeoPackageReader(location)
    raise FileNotFoundError(f"no hydrofabric at {location} (expected a .gpkg or a folder)")


def attributes_layer(
    reader: HydrofabricReader,
    preferred: str = ATTRIBUTES_LAYER_ML,
    *,
    fallback: str | None = ATTRIBUTES_LAYER,
) -> str:
    """The layer to take channel parameters from.

    The reference system takes the first layer whose name matches
    "flowpath-attributes", which in a v2.2 GeoPackage is ``flowpath-attributes-ml``
    (RNR_SPEC section 3); the defaults reproduce that: the ``-ml`` layer when present,
    else the plain one. Pass ``fallback=None`` to insist on ``preferred``.
    """
    available = reader.layers()
    for candidate in (preferred, fallback):
        if candidate is not None and candidate in available:
            return candidate
    wanted = " or ".join(repr(c) for c in (preferred, fallback) if c is not None)
    raise HydrofabricSchemaError(
        f"hydrofabric {reader.location} has no channel attributes layer {wanted}; "
        f"layers: {', '.join(available) or '(none)'}"
    )
