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

import datetime as dt
import math
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import netCDF4
import numpy as np
import numpy.typing as npt

from rnr.hydro.forecast_file import ForecastAttributes, ForecastFile, require_aware

if TYPE_CHECKING:  # the post-processor reads files without the routing stack (numba)
    from rnr.hydro.muskingum_cunge import RoutingResult

# The HDF5 library under netCDF4 is not thread-safe, and the worker writes from
# threads: concurrent writers deadlock. One lock for the process serialises them.
_HDF5_LOCK = threading.Lock()

FILL_VALUE = -9999.0
OUTPUT_INTERVAL_S = 3600.0
FEATURE_TYPE = "wb"
TITLE = "OUTPUT FROM RNR-PIPELINE (T-ROUTE SCHEMA)"

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


def numeric_feature_ids(
    feature_ids: Sequence[str | int] | npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
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
    feature_ids: Sequence[str | int] | npt.NDArray[np.int64],
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
    require_aware("t0", t0)
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
        path = Path(directory) / "forecast.nc"
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
    texts = [
        "rfc_location",
        "rfc_reach_id",
        "max_status",
        "name",
        "state",
        "product_id",
        "flowpath_attributes_layer",
    ]
    missing = [
        name for name in [*texts, "stream_order", "issuance_time"] if name not in global_attributes
    ]
    if missing:
        raise ValueError(f"not an RnR forecast file: no global attribute {', '.join(missing)}")
    return ForecastAttributes(
        **{name: str(global_attributes[name]) for name in texts},
        stream_order=int(np.asarray(global_attributes["stream_order"]).item()),
        issuance_time=_parse_attribute_time("issuance_time", global_attributes["issuance_time"]),
        code_version=str(global_attributes.get("code_version", "")),
    )
