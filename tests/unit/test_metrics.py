"""Unit tests for rnr.core.metrics: CloudWatch Embedded Metric Format lines."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnr.core.metrics import EMF_NAMESPACE, emf_line, emit_emf


def parse(line: str) -> dict[str, Any]:
    assert "\n" not in line
    record = json.loads(line)
    assert isinstance(record, dict)
    return record


def assert_valid_emf(record: dict[str, Any], values: dict[str, float]) -> None:
    """The structure CloudWatch needs to turn the log line into metrics."""
    meta = record["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert not isinstance(meta["Timestamp"], bool)
    [directive] = meta["CloudWatchMetrics"]
    assert isinstance(directive["Namespace"], str)
    assert directive["Namespace"]
    names = [metric["Name"] for metric in directive["Metrics"]]
    assert names == list(values)
    for dimension_set in directive["Dimensions"]:
        for key in dimension_set:
            assert isinstance(record[key], str)  # every dimension is a top-level string
    for name, value in values.items():
        assert record[name] == value  # every metric value is a top-level member


def test_structure() -> None:
    before = int(time.time() * 1000)
    record = parse(emf_line("rnr-producer", {"ProductsPublished": 3, "ProductsSkipped": 0}))
    after = int(time.time() * 1000)
    assert_valid_emf(record, {"ProductsPublished": 3, "ProductsSkipped": 0})
    assert before <= record["_aws"]["Timestamp"] <= after
    assert record["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": EMF_NAMESPACE,
            "Dimensions": [["service"]],
            "Metrics": [
                {"Name": "ProductsPublished", "Unit": "Count"},
                {"Name": "ProductsSkipped", "Unit": "Count"},
            ],
        }
    ]
    assert record["service"] == "rnr-producer"
    assert set(record) == {"_aws", "service", "ProductsPublished", "ProductsSkipped"}


def test_namespace_default() -> None:
    assert EMF_NAMESPACE == "rnr-pipeline"


def test_unit_namespace_and_properties() -> None:
    record = parse(
        emf_line(
            "rnr-postproc",
            {"Duration": 1.5},
            unit="Seconds",
            namespace="custom",
            properties={"run_id": "r-1", "lids": ["A", "B"]},
        )
    )
    assert_valid_emf(record, {"Duration": 1.5})
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "custom"
    assert directive["Metrics"] == [{"Name": "Duration", "Unit": "Seconds"}]
    assert record["run_id"] == "r-1"
    assert record["lids"] == ["A", "B"]


def test_non_json_property_is_stringified() -> None:
    record = parse(emf_line("svc", {"X": 1}, properties={"obj": object}))
    assert record["obj"] == str(object)


def test_emit_emf_writes_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    emit_emf("svc", {"A": 1}, stream=stream)
    [line] = stream.getvalue().splitlines()
    assert_valid_emf(parse(line), {"A": 1})
    assert stream.getvalue().endswith("\n")
    emit_emf("svc", {"B": 2.0})
    [line] = capsys.readouterr().out.splitlines()
    assert_valid_emf(parse(line), {"B": 2.0})


metric_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30
).filter(lambda name: name not in {"_aws", "service"})


@settings(max_examples=100, deadline=None)
@given(
    service=st.text(min_size=1, max_size=30),
    values=st.dictionaries(
        metric_names,
        st.one_of(
            st.integers(min_value=0, max_value=10**9),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_structure_holds_for_any_metrics(service: str, values: dict[str, float]) -> None:
    record = parse(emf_line(service, values))
    assert_valid_emf(record, values)
    assert record["service"] == service
