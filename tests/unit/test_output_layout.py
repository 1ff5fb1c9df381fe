"""The output bucket's key layout: forecast files and product records."""

from __future__ import annotations

import datetime as dt

import pytest

from rnr.core.identifiers import InvalidIdentifier
from rnr.storage.output_layout import (
    is_forecast_key,
    is_product_record_key,
    output_file_name,
    output_key,
    product_record_key,
)

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 5, 21, 0, tzinfo=UTC)


def test_file_name_is_t0_in_utc_to_the_minute() -> None:
    assert output_file_name(T0) == "troute_output_202505052100.nc"
    central = dt.timezone(dt.timedelta(hours=-5))
    assert output_file_name(dt.datetime(2025, 5, 5, 16, 0, 42, tzinfo=central)) == (
        "troute_output_202505052100.nc"
    )


@pytest.mark.parametrize(
    ("prefix", "lid", "key"),
    [
        ("outputs", "HPDT2", "outputs/HPDT2/troute_output_202505052100.nc"),
        ("outputs/rnr/", "hpdt2", "outputs/rnr/HPDT2/troute_output_202505052100.nc"),
        ("", "HPDT2", "HPDT2/troute_output_202505052100.nc"),
    ],
)
def test_output_key_depends_only_on_gauge_and_t0(prefix: str, lid: str, key: str) -> None:
    assert output_key(prefix, lid, T0) == key
    assert output_key(prefix, lid, T0) == output_key(prefix, lid, T0.astimezone())


@pytest.mark.parametrize(
    "lid", ["", "  ", "HP/DT2", "HP DT2", "..", "../ESCAPED", "HPDT2/..", ".", "HPDT2\x00"]
)
def test_output_key_rejects_bad_lid(lid: str) -> None:
    with pytest.raises(InvalidIdentifier, match="not an NWS location id"):
        output_key("outputs", lid, T0)


def test_output_key_rejects_naive_t0() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        output_key("outputs", "HPDT2", dt.datetime(2025, 5, 5, 21))


def test_a_product_record_is_dated_by_its_issuance_in_utc() -> None:
    issued = dt.datetime(2025, 5, 5, 22, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert product_record_key("replace_and_route", "p-1", issued) == (
        "replace_and_route/products/2025/05/06/p-1.json"
    )
    assert product_record_key("", "p-1", T0) == "products/2025/05/05/p-1.json"


@pytest.mark.parametrize("product_id", [".", "..", "../x", "a/b", ""])
def test_a_product_record_key_never_leaves_its_folder(product_id: str) -> None:
    with pytest.raises(InvalidIdentifier):
        product_record_key("replace_and_route", product_id, T0)


@pytest.mark.parametrize("prefix", ["replace_and_route", ""])
def test_keys_are_recognised_by_what_they_hold(prefix: str) -> None:
    forecast = output_key(prefix, "HPDT2", T0)
    record = product_record_key(prefix, "p-1", T0)
    assert is_forecast_key(prefix, forecast) and not is_forecast_key(prefix, record)
    assert is_product_record_key(prefix, record) and not is_product_record_key(prefix, forecast)
    assert not is_forecast_key(prefix, forecast.replace("HPDT2", "../x"))
