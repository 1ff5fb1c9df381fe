"""The NetCDF output of one routed gauge forecast, in T-Route's schema (RNR_SPEC section 5).

Downstream tools read T-Route's ``troute_output_YYYYMMDDHHMM.nc``, so this writer
reproduces that file's structure exactly, as T-Route wrote it for the HPDT2 conformance
case: the same dimensions in the same order (``feature_id``, ``time`` and T-Route's
unused ``type_strlen``), the same variables (including ``type`` and an all-missing
``nudge``), dtypes and attribute names, down to ``missing_value`` being float64 on the
float32 variables. Replace and Route adds global attributes that say which forecast
the file routes.

The writer builds the file in a temporary directory and returns its bytes: the worker
puts them to S3 under a key that depends only on the gauge and t0, so a redelivered
message overwrites the same object instead of adding a second one.

Shapes: ``n`` segments (``feature_id``), ``t`` routed steps, ``h`` hourly samples.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import netCDF4
import numpy as np
import numpy.typing as npt

from rnr.core import identifiers

if TYPE_CHECKING:  # the post-processor reads files without the routing stack (numba)
    from rnr.hydro.forecast import RfcForecast
    from rnr.hydro.muskingum_cunge import RoutingResult
    from rnr.hydro.segments import Segment

# The HDF5 library under netCDF4 is not thread-safe, and the worker writes from
# threads: concurrent writers deadlock. One lock for the process serialises them.
_HDF5_LOCK = threading.Lock()

FILL_VALUE = -9999.0
OUTPUT_INTERVAL_S = 3600.0
FILE_NAME_PREFIX = "troute_output_"
FEATURE_TYPE = "wb"
TITLE = "OUTPUT FROM RNR-PIPELINE (T-ROUTE SCHEMA)"

_FILE_TIME_FORMAT = "%Y%m%d%H%M"
_ATTRIBUTE_TIME_FORMAT = "%Y-%m-%d_%H:%M:%S"
_UNITS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_FEATURE_ID = re.compile(r"(?:wb-)?([0-9]+)")

# (variable, RoutingResult field, long_name, units) of the routed quantities, file order.
_ROUTED = (
    ("flow", "flow_m3_s", "Flow", "m3 s-1"),
    ("velocity", "velocity_m_s", "Velocity", "m/s"),
    ("depth", "depth_m", "Depth", "m"),
)
FLOAT_VARIABLES = (*(name for name, *_ in _ROUTED), "nudge")
DISTRIBUTION = "rnr-pipeline"
UNKNOWN_VERSION = "unknown"


@functools.cache
def package_version() -> str:
    """The installed ``rnr-pipeline`` version (``pyproject.toml``), read once; ``unknown``
    when the distribution is not installed (a source tree on ``PYTHONPATH``)."""
    import importlib.metadata  # here, not at import: the post-processor imports this module

    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


@dataclass(frozen=True)
class ForecastAttributes:
    """What the file routes, written as global attributes next to T-Route's own.

    ``rfc_location`` is the gauge LID; ``rfc_reach_id`` the gauge's NWM reach id (a
    string, as NWPS gives it); ``max_status`` the forecast flood category;
    ``stream_order``, ``name`` and ``state`` describe the gauge's flowpath and place;
    ``issuance_time`` and ``product_id`` name the HML product that triggered the run;
    ``flowpath_attributes_layer`` the hydrofabric layer the channel parameters came from
    (``flowpath-attributes-ml`` where it exists, as the reference picks it).
    ``code_version`` fills T-Route's attribute of that name (empty in the reference): by
    default the version of the installed package (:func:`package_version`), so the
    worker's files and the analysts' tool's say which code wrote them.
    """

    rfc_location: str
    rfc_reach_id: str
    max_status: str
    stream_order: int
    name: str
    state: str
    issuance_time: dt.datetime
    product_id: str
    flowpath_attributes_layer: str
    code_version: str = dataclasses.field(default_factory=package_version)

    def __post_init__(self) -> None:
        for field in ("rfc_location", "rfc_reach_id", "max_status", "product_id"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{field} must be a non-empty string, got {value!r}")
        for field in ("name", "state", "flowpath_attributes_layer", "code_version"):
            if not isinstance(getattr(self, field), str):
                raise ValueError(f"{field} must be a string, got {getattr(self, field)!r}")
        order = self.stream_order
        if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 0:
            raise ValueError(f"stream_order must be a non-negative integer, got {order!r}")
        object.__setattr__(self, "stream_order", int(order))
        _require_aware("issuance_time", self.issuance_time)

    @classmethod
    def of(
        cls,
        forecast: RfcForecast,
        segment: Segment,
        *,
        issuance_time: dt.datetime,
        product_id: str,
    ) -> ForecastAttributes:
        """The attributes of ``forecast`` routed down ``segment``: the worker passes the
        HML product's issuance and id, the analysts' tool the forecast's own."""
        return cls(
            rfc_location=forecast.lid,
            rfc_reach_id=forecast.reach_id,
            max_status=forecast.flood_category,
            stream_order=segment.stream_order,
            name=forecast.name,
            state=forecast.state,
            issuance_time=issuance_time,
            product_id=product_id,
            flowpath_attributes_layer=segment.attributes_layer,
        )


class ForecastFile(NamedTuple):
    """A forecast file read back: arrays by variable name, RnR attributes and t0.

    ``arrays``: ``feature_id`` int64 (n,); ``time`` float64 (h,), seconds since t0;
    ``flow`` (m3/s), ``velocity`` (m/s), ``depth`` (m) float32 (n, h), NaN where the
    file holds the fill value.
    """

    arrays: dict[str, npt.NDArray[np.generic]]
    attributes: ForecastAttributes
    t0: dt.datetime


def output_file_name(t0: dt.datetime) -> str:
    """T-Route's file name: ``troute_output_YYYYMMDDHHMM.nc`` with t0 in UTC."""
    _require_aware("t0", t0)
    return f"{FILE_NAME_PREFIX}{t0.astimezone(dt.UTC).strftime(_FILE_TIME_FORMAT)}.nc"


def output_key(prefix: str, lid: str, t0: dt.datetime) -> str:
    """The S3 key ``{prefix}/{LID}/troute_output_YYYYMMDDHHMM.nc``.

    Only the gauge and t0 decide it, so writing a redelivered forecast again overwrites
    the same object. An empty prefix puts the file at ``{LID}/...``.

    Raises:
        InvalidIdentifier: ``lid`` is not an NWS location id (so never ``..``).
    """
    parts = [part for part in (prefix.strip("/"), identifiers.lid(lid)) if part]
    return "/".join([*parts, output_file_name(t0)])


def hourly_steps(steps: int, dt_s: float) -> npt.NDArray[np.int64]:
    """1-based routed steps that fall on whole hours after t0: k, 2k, ... with k = 3600/dt_s.

    T-Route samples its 5-minute steps every hour, the first one at t0 + 1 h (step 12
    when dt_s = 300); any steps after the last whole hour are not written.
    """
    try:
        step_s = float(dt_s)
    except (TypeError, ValueError):
        step_s = math.nan
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"dt_s must be a positive finite number of seconds, got {dt_s!r}")
    stride = OUTPUT_INTERVAL_S / step_s
    if stride < 1 or abs(stride - round(stride)) > 1e-9:
        raise ValueError(
            f"dt_s = {dt_s} s does not divide the {OUTPUT_INTERVAL_S:.0f} s output interval"
        )
    stride_steps = round(stride)
    if steps < stride_steps:
        raise ValueError(
            f"{steps} steps of {dt_s} s end before t0 + {OUTPUT_INTERVAL_S:.0f} s: "
            "no hourly sample to write"
        )
    return np.arange(stride_steps, steps + 1, stride_steps, dtype=np.int64)


def numeric_feature_ids(feature_ids: Sequence[str | int]) -> npt.NDArray[np.int64]:
    """The numeric part of ``wb-N`` ids (plain integers pass through), checked unique."""
    numbers: list[int] = []
    for feature_id in feature_ids:
        if isinstance(feature_id, int | np.integer) and not isinstance(feature_id, bool):
            number = int(feature_id)
        elif isinstance(feature_id, str) and (match := _FEATURE_ID.fullmatch(feature_id)):
            number = int(match.group(1))
        else:
            raise ValueError(f"feature id must be 'wb-N' or an integer, got {feature_id!r}")
        if not 0 <= number <= np.iinfo(np.int64).max:
            raise ValueError(f"feature id {feature_id!r} is out of the int64 range")
        numbers.append(number)
    if not numbers:
        raise ValueError("feature_ids is empty: a forecast file needs at least one segment")
    array = np.array(numbers, dtype=np.int64)
    unique, counts = np.unique(array, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"feature ids repeat: {unique[counts > 1].tolist()}")
    return array


def write_forecast_netcdf(
    result: RoutingResult,
    *,
    feature_ids: Sequence[str | int],
    t0: dt.datetime,
    dt_s: float,
    attributes: ForecastAttributes,
) -> bytes:
    """The bytes of ``troute_output_YYYYMMDDHHMM.nc`` for one routed forecast.

    ``result`` arrays have shape (t, n), step k (1-based) valid at t0 + k * dt_s, and
    ``feature_ids`` name the n segments in the same order (``wb-N`` or N). The file
    holds the hourly samples (steps 3600/dt_s, 2 * 3600/dt_s, ...) transposed to
    (feature_id, time), values unchanged in float32.

    Raises ``ValueError`` for a naive or sub-second t0, arrays that are not 2-D, differ
    in shape, are empty, hold non-finite values or do not match ``feature_ids``, and for
    a ``dt_s`` that does not divide an hour or a horizon shorter than one hour.
    """
    _require_aware("t0", t0)
    t0_utc = t0.astimezone(dt.UTC)
    if t0_utc.microsecond:
        raise ValueError(f"t0 must be on a whole second (the time units drop fractions): {t0}")
    routed = _routed_arrays(result)
    steps, segments = routed["flow"].shape
    ids = numeric_feature_ids(feature_ids)
    if ids.size != segments:
        raise ValueError(f"{ids.size} feature ids for {segments} segments in the result")
    sample_steps = hourly_steps(steps, dt_s)
    # Whole hours by construction, not step * dt_s, which a dt_s like 0.1 s would blur.
    time_s = np.arange(1, sample_steps.size + 1, dtype=np.float64) * OUTPUT_INTERVAL_S

    # A file on disk, not netCDF4's in-memory mode: HDF5 in memory does not track
    # creation order, so variables and attributes would come back sorted by name
    # instead of in T-Route's order.
    with tempfile.TemporaryDirectory(prefix="rnr-netcdf-") as directory:
        path = Path(directory) / output_file_name(t0_utc)
        with _HDF5_LOCK, netCDF4.Dataset(path, mode="w", format="NETCDF4") as dataset:
            _write_schema(dataset, ids, time_s, t0_utc, attributes)
            for name, values in routed.items():
                dataset[name][:] = values[sample_steps - 1].T
            dataset["nudge"][:] = np.full((segments, time_s.size), FILL_VALUE, np.float32)
        return path.read_bytes()


def read_forecast_netcdf(data: bytes) -> ForecastFile:
    """The arrays, RnR attributes and t0 of a file ``write_forecast_netcdf`` produced.

    Raises ``ValueError`` when the bytes are not NetCDF or the file lacks a variable or
    an RnR attribute: one exception type for a caller to treat as a bad object.
    """
    with _HDF5_LOCK:
        return _read_forecast_netcdf(data)


def _read_forecast_netcdf(data: bytes) -> ForecastFile:
    try:
        dataset = netCDF4.Dataset("forecast.nc", mode="r", memory=data)
    except OSError as exc:
        raise ValueError(f"not a NetCDF file: {exc}") from exc
    try:
        dataset.set_auto_mask(False)
        missing = [
            name
            for name in ("feature_id", "time", *(name for name, *_ in _ROUTED))
            if name not in dataset.variables
        ]
        if missing:
            raise ValueError(f"not a forecast file: no variable {', '.join(missing)}")
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "feature_id": np.asarray(dataset["feature_id"][:], dtype=np.int64),
            "time": np.asarray(dataset["time"][:], dtype=np.float64),
        }
        for name, *_ in _ROUTED:
            values = np.array(dataset[name][:], dtype=np.float32)
            values[values == np.float32(FILL_VALUE)] = np.nan
            arrays[name] = values
        global_attributes = {name: dataset.getncattr(name) for name in dataset.ncattrs()}
    finally:
        dataset.close()
    return ForecastFile(arrays, _attributes_from(global_attributes), _t0_from(global_attributes))


def _require_aware(name: str, value: object) -> None:
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _routed_arrays(result: RoutingResult) -> dict[str, npt.NDArray[np.float32]]:
    """The result's arrays by file variable name, each checked (t, n), non-empty, finite."""
    arrays = {name: np.asarray(getattr(result, field)) for name, field, *_ in _ROUTED}
    shapes = {name: values.shape for name, values in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"result arrays differ in shape: {shapes}")
    shape = shapes["flow"]
    if len(shape) != 2:
        raise ValueError(f"result arrays must be 2-D (steps, segments), got shape {shape}")
    if 0 in shape:
        raise ValueError(f"result is empty: shape {shape} (steps, segments)")
    checked = {}
    for name, values in arrays.items():
        if not np.issubdtype(values.dtype, np.floating) and not np.issubdtype(
            values.dtype, np.integer
        ):
            raise ValueError(f"{name} must be numeric, got dtype {values.dtype}")
        as_float32 = values.astype(np.float32)
        bad = ~np.isfinite(as_float32)
        if bad.any():
            step, segment = np.argwhere(bad)[0]
            raise ValueError(f"{name} is not finite at step {step + 1}, segment index {segment}")
        checked[name] = as_float32
    return checked


def _write_schema(
    dataset: netCDF4.Dataset,
    ids: npt.NDArray[np.int64],
    time_s: npt.NDArray[np.float64],
    t0_utc: dt.datetime,
    attributes: ForecastAttributes,
) -> None:
    """Dimensions, variables and attributes in T-Route's order, ``time`` and ids filled."""
    dataset.createDimension("feature_id", ids.size)
    dataset.createDimension("time", time_s.size)
    dataset.createDimension("type_strlen", len(FEATURE_TYPE))  # T-Route's, used by nothing

    time = dataset.createVariable(
        "time", "f8", ("time",), fill_value=np.float64(FILL_VALUE), contiguous=True
    )
    time.setncatts(
        {
            "long_name": "valid output time",
            "standard_name": "time",
            "units": f"seconds since {t0_utc.strftime(_UNITS_TIME_FORMAT)}",
            "missing_value": np.float64(FILL_VALUE),
        }
    )
    time[:] = time_s

    feature_id = dataset.createVariable("feature_id", "i8", ("feature_id",), contiguous=True)
    feature_id.setncattr("long_name", "Segment ID")
    feature_id[:] = ids

    feature_type = dataset.createVariable("type", str, ("feature_id",), contiguous=True)
    feature_type.setncattr("long_name", "Type")
    feature_type[:] = np.array([FEATURE_TYPE] * ids.size, dtype=object)

    long_names = {name: long_name for name, _, long_name, _ in _ROUTED}
    long_names["nudge"] = "Streamflow Nudge Value"
    units = {name: unit for name, *_, unit in _ROUTED}
    units["nudge"] = "m3 s-1"
    for name in FLOAT_VARIABLES:
        variable = dataset.createVariable(
            name,
            "f4",
            ("feature_id", "time"),
            fill_value=np.float32(FILL_VALUE),
            contiguous=True,
        )
        # missing_value float64 on a float32 variable, as T-Route writes it; setncatts,
        # because assigning ``variable.missing_value`` casts it to the variable's dtype.
        variable.setncatts(
            {
                "long_name": long_names[name],
                "units": units[name],
                "missing_value": np.float64(FILL_VALUE),
            }
        )

    issued_utc = attributes.issuance_time.astimezone(dt.UTC)
    # setncatts, not attribute assignment: ``Dataset.name`` is the group's name.
    dataset.setncatts(
        {
            "TITLE": TITLE,
            "file_reference_time": t0_utc.strftime(_ATTRIBUTE_TIME_FORMAT),
            "code_version": attributes.code_version,
            "rfc_location": attributes.rfc_location,
            "rfc_reach_id": attributes.rfc_reach_id,
            "max_status": attributes.max_status,
            "stream_order": np.int64(attributes.stream_order),
            "name": attributes.name,
            "state": attributes.state,
            "issuance_time": issued_utc.strftime(_ATTRIBUTE_TIME_FORMAT),
            "product_id": attributes.product_id,
            "flowpath_attributes_layer": attributes.flowpath_attributes_layer,
        }
    )


def _parse_attribute_time(name: str, value: object) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(value), _ATTRIBUTE_TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not YYYY-MM-DD_HH:MM:SS") from None


def _t0_from(global_attributes: Mapping[str, object]) -> dt.datetime:
    if "file_reference_time" not in global_attributes:
        raise ValueError("not a forecast file: no global attribute file_reference_time")
    return _parse_attribute_time("file_reference_time", global_attributes["file_reference_time"])


def _attributes_from(global_attributes: Mapping[str, object]) -> ForecastAttributes:
    names = [
        "rfc_location",
        "rfc_reach_id",
        "max_status",
        "stream_order",
        "name",
        "state",
        "issuance_time",
        "product_id",
        "flowpath_attributes_layer",
    ]
    missing = [name for name in names if name not in global_attributes]
    if missing:
        raise ValueError(f"not an RnR forecast file: no global attribute {', '.join(missing)}")
    values = {name: global_attributes[name] for name in names}
    values["stream_order"] = int(np.asarray(values["stream_order"]).item())
    values["issuance_time"] = _parse_attribute_time("issuance_time", values["issuance_time"])
    for name in names:
        if name not in {"stream_order", "issuance_time"}:
            values[name] = str(values[name])
    return ForecastAttributes(**values, code_version=str(global_attributes.get("code_version", "")))
