"""A stand-in for api.weather.gov and the NWPS API, serving the project's fixtures.

Tests and the local stack point ``NWS_API_URL`` at this server's root and
``NWPS_API_URL`` at ``/nwps/v1``. The answers have the shapes of the real services
(RNR_SPEC sections 1-2), including their error bodies, so clients are exercised as
they would be in production. Under ``/_admin`` a test can add products, inject faults
(delays, error statuses, garbled bodies) and read how many requests each path got.

All mutable state lives on ``app.state.replay``, made by :func:`create_app`: two apps
never share products, faults or counters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import http
import json
import logging
import pathlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from devstack.replay.faults import Fault, FaultSpec, FaultTable
from devstack.replay.make_fixtures import (
    DEFAULT_FIXTURES_DIR,
    FIXTURE_NAMESPACE,
    render_product_text,
    render_site_document,
)

__all__ = ["ReplayState", "create_app"]

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/_admin"
NWPS_PREFIX = "/nwps/v1"
JSON_LD = "application/ld+json"
PROBLEM_JSON = "application/problem+json"
# The real API's context is long; clients only need it to be there.
JSON_LD_CONTEXT = {"@version": "1.1", "@vocab": "https://api.weather.gov/ontology#"}
# Products added through /_admin: header fields and spacing of issuance times.
ADDED_WMO_COLLECTIVE_ID = "SRUS54"
ADDED_ISSUING_OFFICE = "KFWR"
ADDED_AWIPS_ID = "HMLFWR"
ADDED_SPACING = dt.timedelta(minutes=1)
ADDED_LIDS_PER_PRODUCT = 3


@dataclasses.dataclass(frozen=True)
class Product:
    """One product as the server holds it; ``seq`` breaks ties between equal times."""

    id: str
    wmo_collective_id: str
    issuing_office: str
    issuance_time: str
    issued: dt.datetime
    product_code: str
    product_name: str
    product_text: str
    seq: int

    @classmethod
    def from_fixture(cls, raw: dict[str, Any], seq: int) -> Product:
        issued = _aware(dt.datetime.fromisoformat(raw["issuanceTime"]))
        return cls(
            id=raw["id"],
            wmo_collective_id=raw["wmoCollectiveId"],
            issuing_office=raw["issuingOffice"],
            issuance_time=raw["issuanceTime"],
            issued=issued,
            product_code=raw["productCode"],
            product_name=raw["productName"],
            product_text=raw["productText"],
            seq=seq,
        )

    def summary(self, base_url: str) -> dict[str, Any]:
        """The ``@graph`` entry of a listing."""
        return {
            "@id": f"{base_url}/products/{self.id}",
            "id": self.id,
            "wmoCollectiveId": self.wmo_collective_id,
            "issuingOffice": self.issuing_office,
            "issuanceTime": self.issuance_time,
            "productCode": self.product_code,
            "productName": self.product_name,
        }

    def detail(self, base_url: str) -> dict[str, Any]:
        """The answer of ``GET /products/{id}``."""
        return {
            "@context": JSON_LD_CONTEXT,
            **self.summary(base_url),
            "productText": self.product_text,
        }


@dataclasses.dataclass
class ReplayState:
    """Everything one replay app knows and counts; reset restores the loaded fixtures."""

    fixtures_dir: pathlib.Path
    gauges: dict[str, dict[str, Any]]
    stageflow: dict[str, dict[str, Any]]
    fixture_products: list[Product]
    products: list[Product] = dataclasses.field(default_factory=list)
    faults: FaultTable = dataclasses.field(default_factory=FaultTable)
    request_counts: Counter[str] = dataclasses.field(default_factory=Counter)
    added_products: int = 0
    next_seq: int = 0

    def reset(self) -> None:
        self.products = list(self.fixture_products)
        self.next_seq = len(self.products)
        self.faults.clear()
        self.request_counts.clear()
        self.added_products = 0


def _aware(moment: dt.datetime) -> dt.datetime:
    """Naive times are taken as UTC (the API only speaks UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _load_state(fixtures_dir: pathlib.Path) -> ReplayState:
    """Read the fixture folder written by ``python -m devstack.replay.make_fixtures``."""
    if not (fixtures_dir / "products.json").is_file():
        raise FileNotFoundError(f"no replay fixtures in {fixtures_dir} (products.json missing)")
    raw_products = json.loads((fixtures_dir / "products.json").read_text("utf-8"))
    raw_gauges = json.loads((fixtures_dir / "gauges.json").read_text("utf-8"))
    gauges = {lid.upper(): gauge for lid, gauge in raw_gauges.items()}
    stageflow = {
        path.stem.upper(): json.loads(path.read_text("utf-8"))
        for path in sorted((fixtures_dir / "stageflow").glob("*.json"))
    }
    products = [Product.from_fixture(raw, seq) for seq, raw in enumerate(raw_products)]
    state = ReplayState(
        fixtures_dir=fixtures_dir, gauges=gauges, stageflow=stageflow, fixture_products=products
    )
    state.reset()
    return state


def _state(request: Request) -> ReplayState:
    return request.app.state.replay


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# --------------------------------------------------------------------------- weather.gov

nws = APIRouter(tags=["api.weather.gov"])


@nws.get("/products")
async def list_products(
    request: Request,
    type_: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> JSONResponse:
    """Products newest first, as the real ``/products?type=HML`` lists them."""
    state = _state(request)
    products = state.products
    if type_ is not None:
        wanted = type_.strip().upper()
        products = [p for p in products if p.product_code.upper() == wanted]
    products = sorted(products, key=lambda p: (p.issued, p.seq), reverse=True)
    if limit is not None:
        products = products[:limit]
    base = _base_url(request)
    body = {"@context": JSON_LD_CONTEXT, "@graph": [p.summary(base) for p in products]}
    return JSONResponse(body, media_type=JSON_LD)


@nws.get("/products/{product_id}")
async def get_product(request: Request, product_id: str) -> JSONResponse:
    """One product with its ``productText``; a problem+json 404 for an unknown id."""
    for product in _state(request).products:
        if product.id == product_id:
            return JSONResponse(product.detail(_base_url(request)), media_type=JSON_LD)
    return JSONResponse(
        {
            "type": "https://api.weather.gov/problems/NotFound",
            "title": "Not Found",
            "status": 404,
            "detail": f"Product {product_id} not found",
        },
        status_code=404,
        media_type=PROBLEM_JSON,
    )


# --------------------------------------------------------------------------------- NWPS

nwps = APIRouter(prefix=NWPS_PREFIX, tags=["NWPS"])


def _nwps_not_found(message: str) -> JSONResponse:
    """The NWPS (gRPC gateway) error body: code 5 is NOT_FOUND."""
    return JSONResponse({"code": 5, "message": message, "details": []}, status_code=404)


@nwps.get("/gauges/{lid}")
async def get_gauge(request: Request, lid: str) -> JSONResponse:
    gauge = _state(request).gauges.get(lid.upper())
    if gauge is None:
        return _nwps_not_found("gauge not found")
    return JSONResponse(gauge)


def _stageflow(request: Request, lid: str) -> dict[str, Any] | None:
    state = _state(request)
    if lid.upper() not in state.gauges:
        return None
    return state.stageflow.get(lid.upper())


@nwps.get("/gauges/{lid}/stageflow")
async def get_stageflow(request: Request, lid: str) -> JSONResponse:
    series = _stageflow(request, lid)
    if series is None:
        return _nwps_not_found("gauge not found")
    return JSONResponse({"observed": series["observation"], "forecast": series["forecast"]})


@nwps.get("/gauges/{lid}/stageflow/forecast")
async def get_stageflow_forecast(request: Request, lid: str) -> JSONResponse:
    series = _stageflow(request, lid)
    if series is None:
        return _nwps_not_found("gauge not found")
    return JSONResponse(series["forecast"])


@nwps.get("/gauges/{lid}/stageflow/observation")
async def get_stageflow_observation(request: Request, lid: str) -> JSONResponse:
    series = _stageflow(request, lid)
    if series is None:
        return _nwps_not_found("gauge not found")
    return JSONResponse(series["observation"])


# ------------------------------------------------------------------------------- health

health = APIRouter(tags=["health"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


# -------------------------------------------------------------------------------- admin

admin = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"])


class AddProductsSpec(BaseModel):
    """The body of ``POST /_admin/products``."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(1, ge=1, le=1000)
    lids: list[str] | None = Field(None, max_length=100)
    issuance_time: dt.datetime | None = None

    @field_validator("lids")
    @classmethod
    def _valid_lids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for lid in value:
            if not (3 <= len(lid) <= 8 and lid.isascii() and lid.isalnum()):
                raise ValueError(f"lid {lid!r} is not 3-8 letters and digits")
        return [lid.upper() for lid in value]


@admin.post("/faults")
async def add_fault(request: Request, spec: FaultSpec) -> dict[str, str]:
    fault = _state(request).faults.add(spec)
    logger.info("fault %s added: %s", fault.id, spec.model_dump())
    return {"id": fault.id}


@admin.get("/faults")
async def list_faults(request: Request) -> dict[str, Any]:
    return {"faults": _state(request).faults.describe()}


@admin.delete("/faults")
async def clear_faults(request: Request) -> dict[str, str]:
    _state(request).faults.clear()
    return {"status": "cleared"}


@admin.post("/products")
async def add_products(request: Request, spec: AddProductsSpec) -> dict[str, Any]:
    """Add ``count`` new HML products with deterministic ids and increasing times."""
    state = _state(request)
    if spec.issuance_time is not None:
        issued = _aware(spec.issuance_time).astimezone(dt.UTC)
    else:
        newest = max((p.issued for p in state.products), default=None)
        issued = (newest + ADDED_SPACING) if newest else dt.datetime(2025, 5, 5, tzinfo=dt.UTC)
    fixture_lids = list(state.gauges)
    added = []
    for _ in range(spec.count):
        n = state.added_products
        lids = spec.lids if spec.lids is not None else _rotating(fixture_lids, n)
        product = _new_product(state, n, lids, issued)
        state.products.append(product)
        state.added_products += 1
        state.next_seq += 1
        added.append({"id": product.id, "issuanceTime": product.issuance_time})
        issued += ADDED_SPACING
    return {"products": added}


def _rotating(lids: list[str], n: int) -> list[str]:
    """The n-th window of ``ADDED_LIDS_PER_PRODUCT`` gauges, wrapping around the list."""
    if not lids:
        return []
    size = min(ADDED_LIDS_PER_PRODUCT, len(lids))
    start = (n * size) % len(lids)
    return [lids[(start + i) % len(lids)] for i in range(size)]


def _new_product(state: ReplayState, n: int, lids: list[str], issued: dt.datetime) -> Product:
    documents = [
        render_site_document(
            state.gauges.get(lid),
            state.stageflow.get(lid),
            lid=lid,
            generation_time=issued,
        )
        for lid in lids
    ]
    text = render_product_text(
        wmo_collective_id=ADDED_WMO_COLLECTIVE_ID,
        issuing_office=ADDED_ISSUING_OFFICE,
        awips_id=ADDED_AWIPS_ID,
        issuance_time=issued,
        documents=documents,
        trailer="\n$$\n",
    )
    return Product(
        id=str(uuid.uuid5(FIXTURE_NAMESPACE, f"admin-product-{n}")),
        wmo_collective_id=ADDED_WMO_COLLECTIVE_ID,
        issuing_office=ADDED_ISSUING_OFFICE,
        issuance_time=issued.isoformat(),
        issued=issued,
        product_code="HML",
        product_name="Hydrologic Markup Language",
        product_text=text,
        seq=state.next_seq,
    )


@admin.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    _state(request).reset()
    return {"status": "reset"}


@admin.get("/requests")
async def request_counts(request: Request) -> dict[str, int]:
    return dict(_state(request).request_counts)


# ---------------------------------------------------------------------------- middleware


def _fault_response(fault: Fault, path: str) -> Response:
    """The answer a fault substitutes: its raw body, or an error body of the right API."""
    status = fault.spec.status if fault.spec.status is not None else 200
    if fault.spec.body is not None:
        return Response(fault.spec.body, status_code=status, media_type=fault.spec.content_type)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:  # a valid but unnamed status, e.g. 599
        phrase = ""
    if path.startswith(NWPS_PREFIX):
        body = {"code": 14, "message": f"injected fault {fault.id}: {phrase}", "details": []}
        return JSONResponse(body, status_code=status)
    problem = {
        "type": "https://api.weather.gov/problems/InjectedFault",
        "title": phrase or "Injected Fault",
        "status": status,
        "detail": f"injected by replay fault {fault.id}",
    }
    return JSONResponse(problem, status_code=status, media_type=PROBLEM_JSON)


async def _faults_and_counts(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count every non-admin request, then apply the first matching fault, if any."""
    path = request.url.path
    if path.startswith(ADMIN_PREFIX):
        return await call_next(request)
    state = _state(request)
    state.request_counts[path] += 1
    fault = state.faults.take(path)
    if fault is None:
        return await call_next(request)
    if fault.spec.delay_seconds > 0:
        await asyncio.sleep(fault.spec.delay_seconds)
    if fault.replaces_answer:
        return _fault_response(fault, path)
    return await call_next(request)


def create_app(fixtures_dir: pathlib.Path | None = None) -> FastAPI:
    """Build a replay app over ``fixtures_dir`` (default: the package's fixtures)."""
    directory = pathlib.Path(fixtures_dir) if fixtures_dir is not None else DEFAULT_FIXTURES_DIR
    app = FastAPI(
        title="rnr replay server",
        description="api.weather.gov and NWPS answers from fixtures, with fault injection.",
    )
    app.state.replay = _load_state(directory)
    app.middleware("http")(_faults_and_counts)
    app.include_router(health)
    app.include_router(nws)
    app.include_router(nwps)
    app.include_router(admin)
    return app
