"""Where things live in the output bucket: one module for every key the pipeline
writes or lists there.

Under ``OUTPUT_PREFIX`` (``replace_and_route`` by default):

* ``{LID}/troute_output_YYYYMMDDHHMM.nc``: one routed forecast, named as T-Route names
  its files, t0 in UTC. Only the gauge and t0 decide the key, so a redelivered
  forecast overwrites the same object instead of adding a second one.
* ``products/YYYY/MM/DD/{product id}.json``: the worker's record of one HML product
  (every gauge's outcome), dated by the product's issuance in UTC.

Keys are built from validated ids only (``rnr.core.identifiers``), so none can leave
its folder. Pure: no S3 here.
"""

from __future__ import annotations

import datetime as dt
import re

from rnr.core import identifiers

FILE_NAME_PREFIX = "troute_output_"
_FILE_TIME_FORMAT = "%Y%m%d%H%M"
_FORECAST_KEY = re.compile(r"[A-Z]{4}[0-9]/troute_output_[0-9]{12}\.nc")
_PRODUCT_RECORD_KEY = re.compile(r"products/[0-9]{4}/[0-9]{2}/[0-9]{2}/[^/]+\.json")


def _aware(t0: dt.datetime) -> dt.datetime:
    if t0.tzinfo is None or t0.utcoffset() is None:
        raise ValueError(f"t0 must be timezone-aware (UTC), got naive {t0.isoformat()}")
    return t0


def output_file_name(t0: dt.datetime) -> str:
    """T-Route's file name: ``troute_output_YYYYMMDDHHMM.nc`` with t0 in UTC."""
    return f"{FILE_NAME_PREFIX}{_aware(t0).astimezone(dt.UTC).strftime(_FILE_TIME_FORMAT)}.nc"


def _joined(prefix: str, *parts: str) -> str:
    return "/".join(part for part in (prefix.strip("/"), *parts) if part)


def output_key(prefix: str, lid: str, t0: dt.datetime) -> str:
    """The key ``{prefix}/{LID}/troute_output_YYYYMMDDHHMM.nc`` (``{LID}/...`` without
    a prefix).

    Raises:
        InvalidIdentifier: ``lid`` is not an NWS location id (so never ``..``).
    """
    return _joined(prefix, identifiers.lid(lid), output_file_name(t0))


def product_record_key(prefix: str, product_id: str, issuance_time: dt.datetime) -> str:
    """The key ``{prefix}/products/YYYY/MM/DD/{product id}.json``.

    Raises:
        InvalidIdentifier: ``product_id`` is not a weather.gov product id.
    """
    day = _aware(issuance_time).astimezone(dt.UTC).strftime("%Y/%m/%d")
    return _joined(prefix, "products", day, f"{identifiers.product_id(product_id)}.json")


def listing_prefix(prefix: str) -> str:
    """What to list to see every output under ``prefix``."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def is_forecast_key(prefix: str, key: str) -> bool:
    """Whether ``key`` is a forecast file under ``prefix``."""
    return _FORECAST_KEY.fullmatch(key.removeprefix(listing_prefix(prefix))) is not None


def is_product_record_key(prefix: str, key: str) -> bool:
    """Whether ``key`` is a product record under ``prefix``."""
    return _PRODUCT_RECORD_KEY.fullmatch(key.removeprefix(listing_prefix(prefix))) is not None
