"""Unit tests for the replay server (devstack.replay) and its fixture generator."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from devstack.replay import make_fixtures
from devstack.replay.server import create_app
from rnr.hydro.hml import extract_lids

FIXTURES = make_fixtures.DEFAULT_FIXTURES_DIR
ALL_LIDS = {"HPDT2", "TRKT2", "PRLL1", "ILRO2", "GDLT2", "MSRM7", "BLNT2", "NCHT2", "KNSA2"}
MISSING = -999.0


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def _graph(client: TestClient, **params: object) -> list[dict]:
    response = client.get("/products", params=params)
    assert response.status_code == 200
    return response.json()["@graph"]


# ------------------------------------------------------------------------------ products


def test_listing_is_newest_first_with_ids_pointing_back(client: TestClient) -> None:
    response = client.get("/products", params={"type": "HML"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    body = response.json()
    assert "@context" in body
    graph = body["@graph"]
    assert len(graph) == 6
    times = [dt.datetime.fromisoformat(p["issuanceTime"]) for p in graph]
    assert times == sorted(times, reverse=True)
    assert graph[0]["issuanceTime"] == "2025-05-05T19:00:00+00:00"
    for product in graph:
        assert product["@id"] == f"http://testserver/products/{product['id']}"
        assert product["productCode"] == "HML"
        assert product["productName"] == "Hydrologic Markup Language"
        assert set(product) == {
            "@id",
            "id",
            "wmoCollectiveId",
            "issuingOffice",
            "issuanceTime",
            "productCode",
            "productName",
        }
        assert "productText" not in product


def test_listing_base_url_follows_the_request() -> None:
    with TestClient(create_app(), base_url="http://replay.local:8123") as other:
        graph = _graph(other, type="HML")
    assert graph[0]["@id"].startswith("http://replay.local:8123/products/")


def test_listing_limit_and_type_filter(client: TestClient) -> None:
    everything = _graph(client, type="HML")
    assert _graph(client, type="HML", limit=2) == everything[:2]
    assert _graph(client, type="hml") == everything
    assert _graph(client) == everything
    assert _graph(client, type="AFD") == []
    assert client.get("/products", params={"limit": 0}).status_code == 422


def test_product_text_round_trip(client: TestClient) -> None:
    committed = {p["id"]: p for p in json.loads((FIXTURES / "products.json").read_text())}
    for summary in _graph(client, type="HML"):
        response = client.get(summary["@id"])
        assert response.status_code == 200
        detail = response.json()
        assert {k: v for k, v in detail.items() if k not in ("productText", "@context")} == summary
        assert detail["productText"] == committed[summary["id"]]["productText"]


def test_every_fixture_product_parses_to_known_lids(client: TestClient) -> None:
    seen: set[str] = set()
    expected = {
        "2025-05-05T14:00:00+00:00": ["HPDT2", "TRKT2", "GDLT2"],
        "2025-05-05T15:00:00+00:00": ["PRLL1"],
        "2025-05-05T16:00:00+00:00": ["ILRO2"],
        "2025-05-05T17:00:00+00:00": ["MSRM7"],
        "2025-05-05T18:00:00+00:00": ["KNSA2"],
        "2025-05-05T19:00:00+00:00": ["HPDT2", "NCHT2", "BLNT2", "TRKT2"],
    }
    for summary in _graph(client, type="HML"):
        text = client.get(summary["@id"]).json()["productText"]
        lids = extract_lids(text).lids
        assert lids == expected[summary["issuanceTime"]]
        seen.update(lids)
    assert seen == ALL_LIDS


def test_fixture_products_cover_the_awkward_shapes() -> None:
    texts = [p["productText"] for p in json.loads((FIXTURES / "products.json").read_text())]
    assert all(t.startswith("000 \nSR") for t in texts)  # WMO header
    assert any(t.count("<?xml") >= 3 and t.rstrip().endswith("LI") for t in texts)  # junk
    assert any('xmlns="' in t for t in texts)  # a default namespace
    assert sum(t.count("<site ") == 1 for t in texts) >= 1  # a single site


def test_unknown_product_is_problem_json_404(client: TestClient) -> None:
    response = client.get("/products/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "https://api.weather.gov/problems/NotFound"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert "00000000-0000-0000-0000-000000000000" in body["detail"]


# --------------------------------------------------------------------------------- NWPS


def test_gauge_shape(client: TestClient) -> None:
    response = client.get("/nwps/v1/gauges/HPDT2")
    assert response.status_code == 200
    gauge = response.json()
    assert gauge["lid"] == "HPDT2"
    assert gauge["name"] == "Brazos River near Hempstead"
    assert gauge["reachId"] == "3121538"
    assert gauge["state"] == {"abbreviation": "TX", "name": "Texas"}
    assert gauge["rfc"]["abbreviation"] == "WGRFC"
    assert gauge["wfo"]["abbreviation"] == "HGX"
    assert isinstance(gauge["downstreamLid"], str)
    assert isinstance(gauge["latitude"], float)
    assert isinstance(gauge["longitude"], float)
    for which in ("observed", "forecast"):
        status = gauge["status"][which]
        assert {"primary", "primaryUnit", "secondary", "secondaryUnit", "validTime"} <= set(status)
    assert gauge["status"]["forecast"]["floodCategory"] == "moderate"
    assert gauge["flood"]["stageUnits"] == "ft"
    assert gauge["flood"]["flowUnits"] == "kcfs"
    assert set(gauge["flood"]["categories"]) == {"action", "minor", "moderate", "major"}
    for category in gauge["flood"]["categories"].values():
        assert set(category) == {"stage", "flow"}


def test_gauge_lookup_is_case_insensitive(client: TestClient) -> None:
    assert client.get("/nwps/v1/gauges/hpdt2").json()["lid"] == "HPDT2"


@pytest.mark.parametrize(
    "path",
    [
        "/nwps/v1/gauges/NOPE1",
        "/nwps/v1/gauges/NOPE1/stageflow",
        "/nwps/v1/gauges/NOPE1/stageflow/forecast",
        "/nwps/v1/gauges/NOPE1/stageflow/observation",
    ],
)
def test_unknown_gauge_is_nwps_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"code": 5, "message": "gauge not found", "details": []}


def _check_series(series: dict, units: str) -> None:
    assert series["timeZone"] == "UTC"
    assert series["primaryName"] == "Stage"
    assert series["primaryUnits"] == "ft"
    assert series["secondaryName"] == "Flow"
    assert series["secondaryUnits"] == units
    assert isinstance(series["wfo"], str)
    for point in series["data"]:
        assert set(point) == {"validTime", "generatedTime", "primary", "secondary"}
        assert point["validTime"].endswith("Z")
        assert isinstance(point["primary"], float)
        assert isinstance(point["secondary"], float)


def test_hpdt2_stageflow(client: TestClient) -> None:
    forecast = client.get("/nwps/v1/gauges/HPDT2/stageflow/forecast").json()
    observation = client.get("/nwps/v1/gauges/HPDT2/stageflow/observation").json()
    combined = client.get("/nwps/v1/gauges/HPDT2/stageflow").json()
    assert combined == {"observed": observation, "forecast": forecast}
    _check_series(forecast, "kcfs")
    _check_series(observation, "kcfs")

    data = forecast["data"]
    assert len(data) == 40
    assert data[0]["validTime"] == "2025-05-05T21:00:00Z"
    times = [dt.datetime.fromisoformat(p["validTime"]) for p in data]
    assert {b - a for a, b in itertools.pairwise(times)} == {dt.timedelta(hours=3)}
    flows = [p["secondary"] for p in data]
    peak = flows.index(max(flows))
    assert 0 < peak < len(flows) - 1
    assert flows[: peak + 1] == sorted(flows[: peak + 1])  # rises...
    assert flows[peak:] == sorted(flows[peak:], reverse=True)  # ...then recedes
    categories = client.get("/nwps/v1/gauges/HPDT2").json()["flood"]["categories"]
    assert categories["moderate"]["flow"] <= max(flows) < categories["major"]["flow"]
    last_observation = dt.datetime.fromisoformat(observation["data"][-1]["validTime"])
    assert last_observation < times[0]


def test_fixture_gauge_catalogue(client: TestClient) -> None:
    """The cases the worker's gate needs are all present."""
    gauges = {lid: client.get(f"/nwps/v1/gauges/{lid}").json() for lid in ALL_LIDS}
    category = {lid: g["status"]["forecast"].get("floodCategory") for lid, g in gauges.items()}
    assert category == {
        "HPDT2": "moderate",
        "TRKT2": "action",
        "PRLL1": "minor",
        "ILRO2": "major",
        "GDLT2": "no_flooding",
        "MSRM7": "not_defined",
        "BLNT2": None,
        "NCHT2": "minor",
        "KNSA2": "minor",
    }
    assert "floodCategory" not in gauges["BLNT2"]["status"]["forecast"]
    assert gauges["PRLL1"]["flood"]["flowUnits"] == "cfs"
    assert gauges["NCHT2"]["reachId"] == ""
    assert gauges["KNSA2"]["wfo"]["abbreviation"] == "AFC"
    assert gauges["KNSA2"]["state"]["abbreviation"] == "AK"
    for lid, gauge in gauges.items():
        assert gauge["lid"] == lid
        assert len(lid) == 5 and lid[:-1].isalpha() and lid[-1].isdigit()
        reach = gauge["reachId"]
        assert reach == "" or (reach.isdigit() and 7 <= len(reach) <= 8)
        forecast = client.get(f"/nwps/v1/gauges/{lid}/stageflow/forecast").json()
        _check_series(forecast, gauge["flood"]["flowUnits"])
    assert client.get("/nwps/v1/gauges/BLNT2/stageflow/forecast").json()["data"] == []


def test_missing_flows_are_scattered(client: TestClient) -> None:
    forecast = client.get("/nwps/v1/gauges/ILRO2/stageflow/forecast").json()
    missing = [i for i, p in enumerate(forecast["data"]) if p["secondary"] == MISSING]
    assert len(missing) >= 3
    assert missing[0] > 0
    assert missing != list(range(missing[0], missing[0] + len(missing)))  # not one block
    observation = client.get("/nwps/v1/gauges/ILRO2/stageflow/observation").json()
    assert observation["data"][-1]["secondary"] == MISSING
    assert observation["data"][-2]["secondary"] != MISSING


# -------------------------------------------------------------------------------- faults


def _add_fault(client: TestClient, **spec: object) -> str:
    response = client.post("/_admin/faults", json=spec)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def test_fault_status_for_n_requests_then_normal(client: TestClient) -> None:
    _add_fault(client, path=r"^/products$", status=503, times=2)
    first = client.get("/products", params={"type": "HML"})
    second = client.get("/products", params={"type": "HML"})
    third = client.get("/products", params={"type": "HML"})
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["content-type"].startswith("application/problem+json")
    assert first.json()["status"] == 503
    assert len(third.json()["@graph"]) == 6


def test_fault_on_nwps_path_uses_nwps_error_shape(client: TestClient) -> None:
    _add_fault(client, path="/nwps/", status=500, times=1)
    response = client.get("/nwps/v1/gauges/HPDT2")
    assert response.status_code == 500
    assert set(response.json()) == {"code", "message", "details"}
    assert client.get("/nwps/v1/gauges/HPDT2").status_code == 200


def test_fault_delay(client: TestClient) -> None:
    _add_fault(client, path="/gauges/HPDT2$", delay_seconds=1.0, times=1)
    started = time.monotonic()
    delayed = client.get("/nwps/v1/gauges/HPDT2")
    elapsed = time.monotonic() - started
    assert delayed.status_code == 200
    assert delayed.json()["lid"] == "HPDT2"
    assert elapsed >= 1.0
    started = time.monotonic()
    client.get("/nwps/v1/gauges/HPDT2")
    assert time.monotonic() - started < 1.0  # used up: the second answer is not delayed


def test_fault_delay_with_status(client: TestClient) -> None:
    _add_fault(client, path="/products", delay_seconds=0.2, status=504, times=1)
    started = time.monotonic()
    response = client.get("/products")
    assert response.status_code == 504
    assert time.monotonic() - started >= 0.2


def test_fault_malformed_body(client: TestClient) -> None:
    _add_fault(client, path="/stageflow/forecast", body='{"data": [', times=1)
    response = client.get("/nwps/v1/gauges/HPDT2/stageflow/forecast")
    assert response.status_code == 200
    assert response.text == '{"data": ['
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert client.get("/nwps/v1/gauges/HPDT2/stageflow/forecast").json()["data"]


def test_fault_body_with_status_and_content_type(client: TestClient) -> None:
    _add_fault(client, path="/healthz", status=502, body="<html>bad gateway</html>",
               content_type="text/html")  # fmt: skip
    response = client.get("/healthz")
    assert response.status_code == 502
    assert response.text == "<html>bad gateway</html>"
    assert response.headers["content-type"].startswith("text/html")


def test_fault_regex_matches_only_its_paths(client: TestClient) -> None:
    _add_fault(client, path=r"/gauges/(ILRO2|PRLL1)(/|$)", status=503)
    assert client.get("/nwps/v1/gauges/ILRO2").status_code == 503
    assert client.get("/nwps/v1/gauges/PRLL1/stageflow/forecast").status_code == 503
    assert client.get("/nwps/v1/gauges/HPDT2").status_code == 200
    assert client.get("/nwps/v1/gauges/ILRO2X").status_code == 404
    # times=null: lasts until cleared
    assert client.get("/nwps/v1/gauges/ILRO2").status_code == 503
    assert client.delete("/_admin/faults").status_code == 200
    assert client.get("/nwps/v1/gauges/ILRO2").status_code == 200


def test_faults_apply_in_order_added(client: TestClient) -> None:
    _add_fault(client, path="/gauges/", status=500, times=1)
    _add_fault(client, path="/gauges/HPDT2", status=502, times=1)
    assert client.get("/nwps/v1/gauges/HPDT2").status_code == 500
    assert client.get("/nwps/v1/gauges/HPDT2").status_code == 502
    assert client.get("/nwps/v1/gauges/HPDT2").status_code == 200
    listed = client.get("/_admin/faults").json()["faults"]
    assert [f["remaining"] for f in listed] == [0, 0]


def test_faults_never_touch_admin_routes(client: TestClient) -> None:
    _add_fault(client, path=".*", status=503)
    assert client.get("/products").status_code == 503
    assert client.get("/_admin/requests").status_code == 200
    assert client.delete("/_admin/faults").status_code == 200
    assert client.get("/products").status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "("},
        {"path": "/x", "status": 42},
        {"path": "/x", "times": 0},
        {"path": "/x", "delay_seconds": -1},
        {"path": "/x", "unknown": 1},
        {},
    ],
)
def test_bad_fault_specs_are_rejected(client: TestClient, spec: dict) -> None:
    assert client.post("/_admin/faults", json=spec).status_code == 422


# ------------------------------------------------------------------- admin products/reset


def test_admin_products_add_and_reset(client: TestClient) -> None:
    response = client.post("/_admin/products", json={"count": 2, "lids": ["hpdt2", "NOPE1"]})
    assert response.status_code == 200
    added = response.json()["products"]
    assert len(added) == 2
    graph = _graph(client, type="HML")
    assert len(graph) == 8
    assert [p["id"] for p in graph[:2]] == [added[1]["id"], added[0]["id"]]  # newest first
    assert added[0]["issuanceTime"] > "2025-05-05T19:00:00+00:00"
    assert added[1]["issuanceTime"] > added[0]["issuanceTime"]
    text = client.get(f"/products/{added[0]['id']}").json()["productText"]
    assert extract_lids(text).lids == ["HPDT2", "NOPE1"]

    assert client.post("/_admin/reset").status_code == 200
    assert len(_graph(client, type="HML")) == 6
    assert client.get(f"/products/{added[0]['id']}").status_code == 404
    again = client.post("/_admin/products", json={"count": 2, "lids": ["HPDT2"]}).json()
    assert [p["id"] for p in again["products"]] == [p["id"] for p in added]  # deterministic


def test_admin_products_default_lids_rotate_over_fixture_gauges(client: TestClient) -> None:
    added = client.post("/_admin/products", json={"count": 3}).json()["products"]
    lids: list[str] = []
    for product in added:
        text = client.get(f"/products/{product['id']}").json()["productText"]
        product_lids = extract_lids(text).lids
        assert product_lids
        lids.extend(product_lids)
    assert set(lids) == ALL_LIDS


def test_admin_products_explicit_issuance_time(client: TestClient) -> None:
    body = {"count": 2, "lids": ["HPDT2"], "issuance_time": "2025-05-01T00:00:00Z"}
    added = client.post("/_admin/products", json=body).json()["products"]
    assert dt.datetime.fromisoformat(added[0]["issuanceTime"]) == dt.datetime(
        2025, 5, 1, tzinfo=dt.UTC
    )
    graph = _graph(client, type="HML")
    assert [p["id"] for p in graph[-2:]] == [added[1]["id"], added[0]["id"]]  # oldest last


def test_admin_products_rejects_bad_lids(client: TestClient) -> None:
    response = client.post("/_admin/products", json={"count": 1, "lids": ["B@D"]})
    assert response.status_code == 422
    assert client.post("/_admin/products", json={"count": 0}).status_code == 422


def test_reset_clears_faults_and_counts(client: TestClient) -> None:
    _add_fault(client, path="/products", status=503)
    client.get("/products")
    client.post("/_admin/reset")
    assert client.get("/_admin/requests").json() == {}
    assert client.get("/products").status_code == 200
    assert client.get("/_admin/faults").json() == {"faults": []}


def test_request_counts(client: TestClient) -> None:
    _add_fault(client, path="/gauges/TRKT2$", status=503, times=1)
    client.get("/products", params={"type": "HML"})
    client.get("/products", params={"type": "HML", "limit": 1})
    client.get("/nwps/v1/gauges/TRKT2")  # faulted: still counted
    client.get("/nwps/v1/gauges/TRKT2")
    client.get("/nwps/v1/gauges/NOPE1")
    client.get("/_admin/faults")  # admin: not counted
    assert client.get("/_admin/requests").json() == {
        "/products": 2,
        "/nwps/v1/gauges/TRKT2": 2,
        "/nwps/v1/gauges/NOPE1": 1,
    }


def test_apps_do_not_share_state() -> None:
    with TestClient(create_app()) as one, TestClient(create_app()) as two:
        one.post("/_admin/faults", json={"path": "/products", "status": 503})
        one.post("/_admin/products", json={"count": 1})
        assert one.get("/products").status_code == 503
        assert two.get("/products").status_code == 200
        assert len(two.get("/products").json()["@graph"]) == 6
        assert two.get("/_admin/requests").json() == {"/products": 2}


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_create_app_with_other_fixture_dir(tmp_path: pathlib.Path) -> None:
    make_fixtures.write_fixtures(tmp_path)
    with TestClient(create_app(tmp_path)) as other:
        assert len(_graph(other, type="HML")) == 6
    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "missing")


# ------------------------------------------------------------------------------ fixtures


def _tree(root: pathlib.Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_make_fixtures_is_deterministic_and_matches_committed(tmp_path: pathlib.Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    make_fixtures.write_fixtures(first)
    make_fixtures.write_fixtures(second)
    generated = _tree(first)
    assert generated == _tree(second)
    assert generated == _tree(FIXTURES), (
        "fixtures are stale: python -m devstack.replay.make_fixtures"
    )
    assert all(len(content) < 50_000 for content in generated.values())


def test_make_fixtures_removes_stale_series(tmp_path: pathlib.Path) -> None:
    stale = tmp_path / "stageflow" / "OLD99.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    make_fixtures.main(["--out", str(tmp_path)])
    assert not stale.exists()
    assert (tmp_path / "stageflow" / "HPDT2.json").exists()


# ------------------------------------------------------------------------------ process


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_module_runs_as_a_server() -> None:
    port = _free_port()
    env = {**os.environ, "REPLAY_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.replay", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        # devstack is not installed: it is imported from the checkout's root.
        cwd=pathlib.Path(__file__).resolve().parents[2],
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "replay server exited early"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "replay server did not answer /healthz"
            time.sleep(0.1)
        response = httpx.get(f"{base}/products", params={"type": "HML"}, timeout=5)
        assert response.status_code == 200
        graph = response.json()["@graph"]
        assert len(graph) == 6
        assert graph[0]["@id"].startswith(f"{base}/products/")
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert f"NWS_API_URL={base}" in output
    assert f"NWPS_API_URL={base}/nwps/v1" in output
