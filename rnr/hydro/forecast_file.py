"""What a forecast file routes, and a forecast file read back: the hydrology's view.

The NetCDF writer and reader (``rnr.hydro_io.netcdf``) turn these into bytes and back;
the post-processor's rules (``rnr.hydro.inherited``) read them without knowing NetCDF.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from rnr.core.version import package_version

if TYPE_CHECKING:  # the post-processor reads files without the routing stack (numba)
    from rnr.hydro.forecast import RfcForecast
    from rnr.hydro.segments import Segment


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
        require_aware("issuance_time", self.issuance_time)

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


def require_aware(name: str, value: object) -> None:
    """ValueError unless ``value`` is a timezone-aware datetime (named ``name``)."""
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
