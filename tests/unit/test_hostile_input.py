"""Fuzzing every parser of outside input: only the project's own errors may escape.

Each boundary (a queue body and its headers, an HML product text, the weather.gov
listing, the NWPS gauge and stage-flow answers, the ids they carry) is fed generated
input, some of it random, some shaped like the real thing with hostile values in it.
A parser may accept, or raise an ``RnrError`` subclass the worker knows how to settle
(a skip or a dead letter with a reason); anything else escaping is a bug, and so is a
key built from an id that could leave its folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rnr.core import identifiers
from rnr.core.errors import RnrError
from rnr.hydro.forecast import RfcForecast, Skipped, SkipReason, prepare_forecast
from rnr.hydro.hml import extract_lids
from rnr.messaging.consumer import MAX_ATTEMPT_HEADER, attempt_of, encodable_headers
from rnr.messaging.models import ProductMessage
from rnr.storage.output_layout import output_key
from rnr.upstream.nwps import read_gauge, read_series
from rnr.upstream.nws import read_listing

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
hostile_text = st.sampled_from(
    [
        "",
        ".",
        "..",
        "../ESCAPED",
        "HPDT2/..",
        "..\\..\\x",
        "%2e%2e%2f",
        "HPDT2\x00",
        "hpdt2",
        " HPDT2 ",
        "HPDT2",
        "ÉPDT2",
        "A" * 10_000,
        "3121538",
        "-1",
        "9" * 40,
    ]
) | st.text(max_size=40)
times = st.sampled_from(
    [
        "2025-05-05T21:00:00Z",
        "2025-05-06T00:00:00+00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:00:00-05:00",
        "2025-05-05T21:00:00",
        "2025-13-40T99:99:99Z",
        "not a time",
    ]
) | st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.just(dt.UTC)
).map(lambda moment: moment.isoformat())
flows = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text()


T0 = dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
VALIDATORS = [identifiers.lid, identifiers.product_id, identifiers.reach_id]


def _escapes_nothing(key: str) -> None:
    assert all(part not in ("", ".", "..") for part in key.split("/")), key


# ------------------------------------------------------------------------- queue


@FUZZ
@given(st.binary(max_size=2_000) | json_values.map(lambda value: json.dumps(value).encode()))
@example(b"[" * 5_000)
@example(b'{"schema_version": ' + b"[" * 5_000 + b"]" * 5_000 + b"}")
def test_any_queue_body_is_a_message_or_an_invalid_message(body: bytes) -> None:
    with contextlib.suppress(RnrError):
        ProductMessage.from_body(body)


@FUZZ
@given(
    st.fixed_dictionaries(
        {
            "id": hostile_text,
            "url": st.sampled_from(["https://api.weather.gov/products/x", "x", ""]),
            "wmo_collective_id": hostile_text,
            "issuing_office": hostile_text,
            "issuance_time": times,
            "product_code": st.just("HML"),
            "product_name": hostile_text,
        }
    )
)
def test_a_valid_message_has_an_id_that_is_safe_as_a_key(fields: dict[str, Any]) -> None:
    try:
        product = ProductMessage.from_body(json.dumps(fields).encode())
    except RnrError:
        return
    assert identifiers.product_id(product.id) == product.id
    product.issuance_time.astimezone(dt.UTC)  # never overflows once accepted


@FUZZ
@given(
    st.dictionaries(
        st.text(max_size=20),
        json_values | st.integers(min_value=-(2**70), max_value=2**70) | st.binary(max_size=20),
        max_size=6,
    ),
    json_values | st.integers(min_value=-(2**140), max_value=2**140) | st.binary(max_size=8),
)
@example({}, "1" * 40)
@example({}, 10**40)
def test_any_headers_give_an_attempt_or_an_invalid_header_and_can_be_republished(
    headers: dict[str, Any], attempt: object
) -> None:
    import pamqp.encode

    headers = {**headers, "x-rnr-attempt": attempt}
    with contextlib.suppress(RnrError):
        assert 1 <= attempt_of(headers) <= MAX_ATTEMPT_HEADER
    pamqp.encode.field_table(encodable_headers(headers))


# ------------------------------------------------------------------------- HML


site = st.builds(
    lambda site_id, body: f'<?xml version="1.0"?>\n<site id="{site_id}">{body}</site>\n',
    hostile_text.map(lambda text: text.replace('"', "").replace("<", "").replace("&", "")),
    st.sampled_from(["", "<observed/>", "<forecast><datum/></forecast>", "<a>", "]]>"]),
)


@FUZZ
@given(st.lists(site | st.text(max_size=80), max_size=6).map("".join))
def test_any_product_text_gives_location_ids_or_a_parse_error(text: str) -> None:
    try:
        sites = extract_lids(text)
    except RnrError:
        return
    for lid in sites.lids:
        assert identifiers.lid(lid) == lid
        _escapes_nothing(
            output_key("replace_and_route", lid, dt.datetime(2025, 5, 5, tzinfo=dt.UTC))
        )


# ------------------------------------------------------------------------- weather.gov


@FUZZ
@given(
    json_values
    | st.lists(
        st.fixed_dictionaries(
            {"id": hostile_text, "issuanceTime": times},
            optional={
                "wmoCollectiveId": hostile_text,
                "issuingOffice": hostile_text,
                "productCode": hostile_text,
                "productName": hostile_text,
                "@id": hostile_text,
            },
        )
        | json_values,
        max_size=6,
    ).map(lambda graph: {"@graph": graph})
)
def test_any_listing_gives_products_with_safe_ids_or_a_rejection(payload: Any) -> None:
    try:
        listing = read_listing(payload)
    except RnrError:
        return
    for product in listing.products:
        assert identifiers.product_id(product.id) == product.id


# ------------------------------------------------------------------------- NWPS

gauge_answers = st.fixed_dictionaries(
    {"lid": hostile_text},
    optional={
        "reachId": hostile_text,
        "name": hostile_text,
        "wfo": st.fixed_dictionaries({"abbreviation": hostile_text}),
        "status": st.fixed_dictionaries(
            {
                "forecast": st.fixed_dictionaries(
                    {"floodCategory": st.sampled_from(["moderate", "major", "action", "x"])}
                )
            }
        ),
    },
)
series_answers = st.fixed_dictionaries(
    {
        "secondaryUnits": st.sampled_from(["kcfs", "cfs", "m3/s", ""]),
        "data": st.lists(
            st.fixed_dictionaries({"validTime": times}, optional={"secondary": flows}),
            max_size=8,
        ),
    },
    optional={"issuedTime": times},
)


@FUZZ
@given(
    gauge_answers | json_values,
    series_answers | json_values,
    st.none() | series_answers,
)
def test_any_nwps_answers_give_a_routable_forecast_a_skip_or_a_rejection(
    gauge_payload: Any, forecast_payload: Any, observation_payload: Any
) -> None:
    lid = "HPDT2"
    try:
        gauge = read_gauge(lid, gauge_payload)
        forecast = read_series(lid, "forecast", forecast_payload)
        observation = (
            None
            if observation_payload is None
            else read_series(lid, "observation", observation_payload)
        )
    except RnrError:
        return
    prepared = prepare_forecast(lid, gauge, forecast, observation)
    assert prepared.lid == lid  # the asked id, whatever the answer says
    if isinstance(prepared, Skipped):
        assert isinstance(prepared.reason, SkipReason)
        return
    assert isinstance(prepared, RfcForecast)
    assert identifiers.reach_id(prepared.reach_id) == prepared.reach_id
    assert len(prepared.valid_times) >= 2
    assert all(b > a for a, b in zip(prepared.valid_times, prepared.valid_times[1:], strict=False))
    _escapes_nothing(output_key("replace_and_route", prepared.lid, prepared.t0))


# ------------------------------------------------------------------------- ids


@FUZZ
@given(hostile_text)
@pytest.mark.parametrize(
    "validate", [identifiers.lid, identifiers.product_id, identifiers.reach_id]
)
def test_an_id_is_accepted_only_if_it_cannot_name_a_path(validate: Any, value: str) -> None:
    try:
        accepted = validate(value)
    except RnrError:
        return
    assert accepted and "/" not in accepted and "\\" not in accepted and "." not in accepted
    assert accepted.isascii() and accepted.isprintable() and " " not in accepted
