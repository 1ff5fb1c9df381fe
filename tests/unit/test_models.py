"""Unit tests for rnr.messaging.models.ProductMessage: the producer/worker contract."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rnr.core.errors import PermanentError
from rnr.core.identifiers import PRODUCT_ID_PATTERN
from rnr.messaging.errors import InvalidMessage
from rnr.messaging.models import MAX_BODY_BYTES, SCHEMA_VERSION, ProductMessage

VALID: dict[str, Any] = {
    "schema_version": 1,
    "id": "508e35f6-a6ee-5cea-9361-6f4b79520bda",
    "url": "https://api.weather.gov/products/508e35f6-a6ee-5cea-9361-6f4b79520bda",
    "wmo_collective_id": "SRUS54",
    "issuing_office": "KFWR",
    "issuance_time": "2025-05-05T14:00:00+00:00",
    "product_code": "HML",
    "product_name": "Hydrologic Markup Language",
}
REQUIRED = [name for name in VALID if name != "schema_version"]


def body(**changes: Any) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def invalid(raw: bytes) -> str:
    with pytest.raises(InvalidMessage) as caught:
        ProductMessage.from_body(raw)
    message = str(caught.value)
    assert message.startswith(f"not a valid ProductMessage v{SCHEMA_VERSION}: ")
    assert caught.value.__cause__ is None
    return message


def test_from_body_reads_a_valid_message() -> None:
    message = ProductMessage.from_body(body())
    assert message.schema_version == 1
    assert message.id == VALID["id"]
    assert str(message.url) == VALID["url"]
    assert message.issuance_time == dt.datetime(2025, 5, 5, 14, tzinfo=dt.UTC)
    assert message.product_code == "HML"


def test_to_body_is_json_with_the_schema_version() -> None:
    raw = ProductMessage.from_body(body()).to_body()
    assert isinstance(raw, bytes)
    decoded = json.loads(raw)
    assert decoded["schema_version"] == SCHEMA_VERSION == 1
    assert set(decoded) == set(VALID)
    assert dt.datetime.fromisoformat(decoded["issuance_time"]) == dt.datetime(
        2025, 5, 5, 14, tzinfo=dt.UTC
    )


def test_schema_version_defaults_when_building_in_code() -> None:
    fields = {k: v for k, v in VALID.items() if k != "schema_version"}
    assert ProductMessage(**fields).schema_version == SCHEMA_VERSION


def test_message_is_frozen() -> None:
    message = ProductMessage.from_body(body())
    with pytest.raises(ValidationError):
        message.id = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- round trip

ids = st.from_regex(PRODUCT_ID_PATTERN.replace("^", r"\A").replace("$", r"\Z"))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
times = st.datetimes(
    min_value=dt.datetime(1990, 1, 2),
    max_value=dt.datetime(2199, 12, 31),
    timezones=st.one_of(st.just(dt.UTC), offsets),
)


@settings(max_examples=150, deadline=None)
@given(
    product_id=ids,
    issued=times,
    office=st.text(max_size=20),
    name=st.text(max_size=60),
)
def test_round_trip(product_id: str, issued: dt.datetime, office: str, name: str) -> None:
    original = ProductMessage(
        id=product_id,
        url=f"https://api.weather.gov/products/{product_id}",  # type: ignore[arg-type]
        wmo_collective_id="SRUS54",
        issuing_office=office,
        issuance_time=issued,
        product_code="HML",
        product_name=name,
    )
    again = ProductMessage.from_body(original.to_body())
    assert again == original
    assert again.issuance_time == issued
    assert again.issuance_time.utcoffset() == issued.utcoffset()
    assert again.to_body() == original.to_body()


# ------------------------------------------------------------------------------- invalid


def test_invalid_message_is_permanent() -> None:
    assert issubclass(InvalidMessage, PermanentError)


@pytest.mark.parametrize("raw", [b"not json", b"", b"{", b'{"id": "a",}', b"\xff\xfe"])
def test_bad_json(raw: bytes) -> None:
    assert "body: Invalid JSON" in invalid(raw)


@pytest.mark.parametrize("raw", [b"[]", b"42", b'"text"', b"null"])
def test_not_an_object(raw: bytes) -> None:
    assert "body: Input should be an object" in invalid(raw)


@pytest.mark.parametrize("field", REQUIRED)
def test_missing_field_is_named(field: str) -> None:
    fields = {k: v for k, v in VALID.items() if k != field}
    assert f"{field}: Field required" in invalid(json.dumps(fields).encode())


def test_every_missing_field_is_named() -> None:
    message = invalid(b"{}")
    for field in REQUIRED:
        assert f"{field}: Field required" in message


def test_extra_field_is_named() -> None:
    message = invalid(body(priority="high"))
    assert "priority: Extra inputs are not permitted" in message


@pytest.mark.parametrize("version", [0, 2, 99, "1", None])
def test_wrong_schema_version(version: object) -> None:
    assert "schema_version: " in invalid(body(schema_version=version))


def test_wrong_schema_version_says_which_version_arrived() -> None:
    assert "2" in invalid(body(schema_version=2)).split("schema_version:")[1]


@pytest.mark.parametrize(
    "when", ["2025-05-05T14:00:00", "2025-05-05 14:00:00", "2025-05-05T14:00:00.123"]
)
def test_naive_datetime(when: str) -> None:
    assert "issuance_time: Input should have timezone info" in invalid(body(issuance_time=when))


@pytest.mark.parametrize("when", ["yesterday", "2025-13-01T00:00:00Z", 3.5e20])
def test_unparseable_datetime(when: object) -> None:
    assert "issuance_time: " in invalid(body(issuance_time=when))


@pytest.mark.parametrize(
    "product_id",
    [
        *("", "has space", "slash/inside", "a" * 129, "ünïcode", "new\nline"),
        # Names a path could resolve: the current folder, its parent, a walk out of it.
        *(".", "..", "../products", "..%2F", "a.b", "-leading-dash", "x:y", "a\\b"),
    ],
)
def test_bad_id(product_id: str) -> None:
    assert "id: " in invalid(body(id=product_id))


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+05:00",  # cannot be shifted to UTC at all
        "9999-12-31T23:00:00-05:00",
        "1989-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_issuance_time_outside_the_span_is_rejected(when: str) -> None:
    assert "issuance_time: Value error, must lie between" in invalid(body(issuance_time=when))


def test_an_oversized_body_is_rejected_unread_with_its_size() -> None:
    message = invalid(b" " * (MAX_BODY_BYTES + 1))
    assert f"{MAX_BODY_BYTES + 1:,} bytes" in message
    assert "limit" in message


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 20_000,
        b'{"schema_version": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        b'{"schema_version": 2, "x": ' + b"{" * 5_000 + b"}",
    ],
)
def test_deeply_nested_json_is_a_permanent_rejection(raw: bytes) -> None:
    assert "Invalid JSON" in invalid(raw)


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/x", "/products/1", 5])
def test_bad_url(url: object) -> None:
    assert "url: " in invalid(body(url=url))


@pytest.mark.parametrize("field", ["wmo_collective_id", "issuing_office", "product_code"])
def test_non_string_fields(field: str) -> None:
    assert f"{field}: Input should be a valid string" in invalid(body(**{field: 12}))


def test_several_problems_are_joined() -> None:
    message = invalid(body(id="", extra=1, issuance_time="2025-05-05T14:00:00"))
    assert message.count(";") == 2
    for field in ("id", "extra", "issuance_time"):
        assert f"{field}: " in message
