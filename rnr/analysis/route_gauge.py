"""Route one gauge forecast offline, write its NetCDF and draw its hydrograph.

For analysts, run by hand (``python -m rnr.analysis route --help``). The forecast comes
from files (an NWPS stage-flow forecast answer, plus the gauge answer and optionally the
observation answer) or from an NWPS-compatible API (``--lid`` with ``--nwps-url``). It is
routed down the gauge's segment of a local hydrofabric (a ``.gpkg`` file or a folder of
``<layer>.parquet``) exactly as the worker does (RNR_SPEC sections 2-5), and the tool
writes ``DIR/troute_output_YYYYMMDDHHMM.nc`` and ``DIR/<LID>_hydrograph.png``.

The hydrograph draws the gauge answer's flood thresholds (NWPS ``flood.categories``) as
labelled lines and has a second flow axis in kcfs. A curve whose maximum is its last
step is not called a peak: it is "still rising at end of forecast (≥ its last flow)".
The PNG needs the ``analysis`` extra (matplotlib); without it the tool says how to
install it, skips the PNG and still writes the NetCDF and the summary (exit 0).

Exit codes: 0 routed; 2 bad input (a file that is missing, not JSON or not the expected
answer, a hydrofabric without the needed layers, a forecast that cannot be routed, bad
arguments); 3 the gauge is skipped (the reason is printed); 4 the reach is not in the
hydrofabric; 5 the API could not be reached or gave an unusable answer.

Progress goes to stderr; the result (file paths and a one-line summary) to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ValidationError

from rnr.core import identifiers
from rnr.core.errors import PermanentError, TransientError
from rnr.core.identifiers import InvalidIdentifier
from rnr.hydro.forecast import (
    FLOW_UNITS_TO_M3_S,
    FloodThreshold,
    Gauge,
    GaugeStatus,
    GaugeStatusPoint,
    RfcForecast,
    Skipped,
    StageFlowSeries,
    prepare_forecast,
)
from rnr.hydro.muskingum_cunge import DT_S, RoutingResult
from rnr.hydro.segments import NetworkIndex, ReachNotFound, Segment, SegmentError
from rnr.hydro_io.hydrofabric import (
    ATTRIBUTES_LAYER,
    HydrofabricSchemaError,
    attributes_layer,
    open_hydrofabric,
)
from rnr.hydro_io.routed_forecast import route_to_netcdf
from rnr.storage.output_layout import output_file_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_SKIPPED = 3
EXIT_UNKNOWN_REACH = 4
EXIT_UPSTREAM = 5

# Without a gauge answer there is no flood category: the file says so, and the
# flood-category gate is not applied.
UNKNOWN_CATEGORY = "unknown"
DEFAULT_PRODUCT_ID = "offline-analysis"
USER_AGENT = "rnr-pipeline route-gauge (analyst tool)"
INSTALL_ANALYSIS_EXTRA = "pip install 'rnr-pipeline[analysis]'"
M3_S_PER_KCFS = FLOW_UNITS_TO_M3_S["kcfs"]
# Line colours of the flood categories, after the NWS hydrographs' (yellow darkened so
# that it shows on white).
THRESHOLD_COLORS = {
    "action": "#d4b000",
    "minor": "#ff8c00",
    "moderate": "#e00000",
    "major": "#b000e0",
}

_ModelT = TypeVar("_ModelT", bound=BaseModel)


class BadInput(PermanentError):
    """An input the tool cannot use; the message names the file and the problem."""


class MissingExtra(ImportError):
    """matplotlib, of the ``analysis`` extra, cannot be imported: no hydrograph."""


# --- inputs -------------------------------------------------------------------------


def read_answer(path: Path, model: type[_ModelT], what: str) -> _ModelT:
    """One NWPS answer saved as a JSON file, validated as ``model``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: the {what} file is not UTF-8 text ({exc.reason})") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{path}: the {what} file is not JSON ({exc})") from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
            for error in exc.errors()[:3]
        )
        raise BadInput(f"{path}: not an NWPS {what} answer: {problems}") from None


def ungated_forecast(
    lid: str, reach_id: str, forecast: StageFlowSeries, observation: StageFlowSeries | None
) -> RfcForecast | Skipped:
    """The forecast routed without a gauge answer: no flood category, no category gate.

    The series checks (flow units, valid values, initial flow) are still the worker's:
    :func:`prepare_forecast` runs with a stand-in category that passes its gate, which
    the result then replaces by ``unknown``.
    """
    stand_in = Gauge(
        lid=lid,
        reach_id=reach_id,
        status=GaugeStatus(forecast=GaugeStatusPoint(flood_category="action")),
    )
    prepared = prepare_forecast(lid, stand_in, forecast, observation)
    if isinstance(prepared, Skipped):
        return prepared
    return dataclasses.replace(prepared, flood_category=UNKNOWN_CATEGORY)


def forecast_from_files(
    forecast_path: Path,
    gauge_path: Path | None,
    observation_path: Path | None,
    *,
    reach_id: str | None = None,
    lid: str | None = None,
) -> tuple[RfcForecast | Skipped, Gauge | None, list[str]]:
    """The forecast of saved NWPS answers, the gauge answer (if given), and notes for
    the analyst.

    With a gauge answer the worker's gate applies (``reach_id`` only replaces its
    ``reachId``); without one ``reach_id`` is required and the gate is not applied.
    """
    notes: list[str] = []
    lid = _checked(identifiers.lid, lid, "--lid") if lid else None
    reach_id = _checked(identifiers.reach_id, reach_id, "--reach-id") if reach_id else None
    forecast = read_answer(forecast_path, StageFlowSeries, "stage-flow forecast")
    observation = (
        read_answer(observation_path, StageFlowSeries, "stage-flow observation")
        if observation_path is not None
        else None
    )
    if gauge_path is None:
        if not reach_id:
            raise BadInput("no gauge file: give --gauge FILE.json, or --reach-id for a quick run")
        label = lid or f"REACH{reach_id}"
        notes.append(
            f"no gauge answer: flood category {UNKNOWN_CATEGORY!r}, "
            "the flood-category gate is not applied"
        )
        return ungated_forecast(label, reach_id, forecast, observation), None, notes
    gauge = read_answer(gauge_path, Gauge, "gauge")
    gauge_lid = _checked(identifiers.lid, gauge.lid, f"{gauge_path}: the gauge file's lid")
    if lid and lid != gauge_lid:
        raise BadInput(f"{gauge_path}: the gauge file is {gauge_lid}, not --lid {lid}")
    if reach_id:
        if reach_id != gauge.reach_id.strip():
            notes.append(f"reach {reach_id} replaces the gauge's reachId {gauge.reach_id!r}")
        gauge = gauge.model_copy(update={"reach_id": reach_id})
    return prepare_forecast(gauge_lid, gauge, forecast, observation), gauge, notes


def _checked(validate: Callable[[object], str], value: object, what: str) -> str:
    """``validate(value)``, its InvalidIdentifier turned into a BadInput naming ``what``."""
    try:
        return validate(value)
    except InvalidIdentifier as exc:
        raise BadInput(f"{what}: {exc}") from None


def output_path(out: Path, file_name: str) -> Path:
    """``out / file_name``, refused unless it is a plain file name inside ``out``.

    File names come from validated ids, so this never fires in use: it is the last
    guard that keeps every output inside the folder the analyst chose.
    """
    path = out / file_name
    if Path(file_name).name != file_name or path.resolve().parent != out.resolve():
        raise BadInput(f"{file_name!r} would be written outside {out}")
    return path


async def forecast_from_api(
    lid: str, nwps_url: str, *, timeout_seconds: float = 30.0
) -> tuple[RfcForecast | Skipped, Gauge | None]:
    """The forecast of ``lid`` fetched as the worker fetches it (gate included), and the
    gauge answer it was fetched with (``None`` if NWPS did not know the gauge)."""
    from rnr.upstream.http import UpstreamClient
    from rnr.upstream.nwps import NwpsClient

    class GaugeKeepingClient(NwpsClient):
        """The worker's client, keeping the gauge answer for its flood thresholds."""

        answer: Gauge | None = None

        async def gauge(self, lid: str) -> Gauge:
            self.answer = await super().gauge(lid)
            return self.answer

    session = UpstreamClient.open_session(user_agent=USER_AGENT, timeout_seconds=timeout_seconds)
    async with session:
        client = GaugeKeepingClient(
            UpstreamClient(session, retries=2, backoff_seconds=0.5), nwps_url
        )
        prepared = await client.rfc_forecast(lid)
        return prepared, client.answer


def load_network(hydrofabric: Path, layer: str | None) -> NetworkIndex:
    """Index the hydrofabric; ``layer`` insists on an attributes layer, None picks the
    reference's (``flowpath-attributes-ml`` where it exists)."""
    try:
        with open_hydrofabric(hydrofabric) as reader:
            chosen = (
                attributes_layer(reader)
                if layer is None
                else attributes_layer(reader, layer, fallback=None)
            )
            return NetworkIndex.from_reader(reader, chosen)
    except FileNotFoundError as exc:
        raise BadInput(f"{hydrofabric}: {exc}") from None
    except (HydrofabricSchemaError, OSError, ValueError) as exc:
        raise BadInput(f"{hydrofabric}: not a usable hydrofabric: {exc}") from None


# --- routing and output -------------------------------------------------------------


class Peak(NamedTuple):
    """The maximum of a series: its step (index) and value, and whether it is the last."""

    step: int
    value: float
    at_horizon: bool


def peak_or_horizon(values: npt.ArrayLike) -> Peak:
    """The maximum of ``values`` (shape (t,)), and whether it falls on the last step.

    A maximum at the last step is not a peak: the flow is still rising when the forecast
    ends, and its true peak is at least that value. The first of equal maxima counts,
    so a flow that levels off before the end has its peak where it levelled off.
    Raises ``ValueError`` for an empty series.
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("no value: the maximum of an empty series is undefined")
    index = int(np.argmax(array))
    return Peak(index, float(array[index]), index == array.size - 1)


def still_rising(flow_text: str) -> str:
    """The words for a maximum on the last step, in the plot and the summary."""
    return f"still rising at end of forecast (≥ {flow_text})"


def threshold_label(threshold: FloodThreshold) -> str:
    """e.g. ``moderate 3,107 m³/s (109.7 kcfs, stage 50.0 ft)``."""
    details = f"{threshold.flow_m3_s / M3_S_PER_KCFS:,.1f} kcfs"
    if threshold.stage is not None:
        details += f", stage {threshold.stage:.1f}"
        if threshold.stage_units:
            details += f" {threshold.stage_units}"
    return f"{threshold.category} {threshold.flow_m3_s:,.0f} m³/s ({details})"


def step_times(t0: dt.datetime, steps: int, dt_s: float = DT_S) -> list[dt.datetime]:
    """Valid times of routing steps 1..steps (step k at t0 + k * dt_s), in UTC."""
    start = t0.astimezone(dt.UTC)
    return [start + dt.timedelta(seconds=k * dt_s) for k in range(1, steps + 1)]


def _m3_s_to_kcfs(flow: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(flow, dtype=np.float64) / M3_S_PER_KCFS


def _kcfs_to_m3_s(flow: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(flow, dtype=np.float64) * M3_S_PER_KCFS


def plot_hydrograph(
    forecast: RfcForecast,
    segment: Segment,
    result: RoutingResult,
    *,
    dt_s: float = DT_S,
    thresholds: Sequence[FloodThreshold] = (),
) -> Figure:
    """Flow at the gauge (the origin segment) and at the last segment against UTC time,
    with the RFC forecast points as markers, the flood ``thresholds`` (of the gauge
    answer; none without one) as labelled dashed lines, and a second axis in kcfs.
    Every series starts at t0 from the initial flow, the routing's initial state. Each
    curve's maximum is marked: as its peak, or, on the last step, as still rising.

    Artists carry a ``gid``: ``flood-<category>`` (line) and ``flood-<category>-label``
    (text) for the thresholds; ``peak-gauge`` / ``peak-last-segment`` for a peak marker,
    ``horizon-gauge`` / ``horizon-last-segment`` for the marker and its arrowed note.

    Raises :class:`MissingExtra` when matplotlib cannot be imported.
    """
    try:
        import matplotlib.dates  # noqa: F401 - the import that needs the analysis extra
        from matplotlib.figure import Figure  # Agg canvas, no pyplot state, no display
    except ImportError as exc:
        raise MissingExtra(f"matplotlib cannot be imported ({exc})") from exc

    t0 = forecast.t0.astimezone(dt.UTC)
    times = [t0, *step_times(t0, result.flow_m3_s.shape[0], dt_s)]
    initial = np.float32(forecast.initial_flow_m3_s)
    origin_flow = np.concatenate([[initial], result.flow_m3_s[:, 0]])
    last_flow = np.concatenate([[initial], result.flow_m3_s[:, -1]])
    length_km = float(segment.cumulative_length_km[-1])

    figure = Figure(figsize=(11, 6.5), dpi=110, layout="constrained")
    axes = figure.add_subplot()
    _draw_curves(axes, times, origin_flow, last_flow, forecast, segment, length_km)
    _mark_maxima(axes, times, origin_flow, last_flow)
    top = max(float(origin_flow.max()), float(last_flow.max()), float(forecast.flow_m3_s.max()))
    top = max(top, _draw_thresholds(axes, thresholds))
    _decorate(figure, axes, forecast, segment, t0=t0, top=top, length_km=length_km, dt_s=dt_s)
    return figure


def _draw_curves(
    axes: Axes,
    times: list[dt.datetime],
    origin_flow: npt.NDArray[np.float32],
    last_flow: npt.NDArray[np.float32],
    forecast: RfcForecast,
    segment: Segment,
    length_km: float,
) -> None:
    """The gauge's and the last segment's flow, and the RFC forecast points."""
    axes.plot(
        times,  # type: ignore[arg-type]  # matplotlib converts datetimes; its stubs do not say so
        origin_flow,
        color="tab:blue",
        linewidth=2,
        label=f"gauge {forecast.lid} (origin {segment.flowpath_ids[0]})",
    )
    axes.plot(
        times,  # type: ignore[arg-type]  # matplotlib converts datetimes; its stubs do not say so
        last_flow,
        color="tab:orange",
        linewidth=2,
        label=f"last segment {segment.flowpath_ids[-1]} (ends {length_km:.1f} km downstream)",
    )
    axes.plot(
        [time.astimezone(dt.UTC) for time in forecast.valid_times],  # type: ignore[arg-type]  # matplotlib converts datetimes; its stubs do not say so
        forecast.flow_m3_s,
        linestyle="none",
        marker="o",
        markersize=5,
        markerfacecolor="white",
        markeredgecolor="black",
        label="RFC forecast (lateral inflow at the origin)",
    )


def _mark_maxima(
    axes: Axes,
    times: list[dt.datetime],
    origin_flow: npt.NDArray[np.float32],
    last_flow: npt.NDArray[np.float32],
) -> None:
    """Each curve's maximum: a peak marker, or, on the last step, still rising."""
    for flow, color, where in (
        (origin_flow, "tab:blue", "gauge"),
        (last_flow, "tab:orange", "last segment"),
    ):
        key = where.replace(" ", "-")
        peak = peak_or_horizon(flow)
        flow_text = f"{peak.value:,.0f} m³/s"
        if peak.at_horizon:
            marker, size, kind = ">", 9, "horizon"
            label = f"{where}: {still_rising(flow_text)}"
        else:
            marker, size, kind = "v", 8, "peak"
            label = f"peak at {where}: {flow_text}, {times[peak.step]:%m-%d %H:%M} UTC"
        axes.plot(
            times[peak.step],  # type: ignore[arg-type]  # matplotlib converts datetimes; its stubs do not say so
            peak.value,
            linestyle="none",
            marker=marker,
            markersize=size,
            color=color,
            label=label,
            gid=f"{kind}-{key}",
        )
        if not peak.at_horizon:
            continue
        axes.annotate(
            still_rising(flow_text),
            xy=(times[peak.step], peak.value),
            xytext=(-12, 16),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=9,
            color=color,
            fontweight="bold",
            arrowprops={"arrowstyle": "->", "color": color},
            gid=f"horizon-{key}",
        )


def _draw_thresholds(axes: Axes, thresholds: Sequence[FloodThreshold]) -> float:
    """The flood thresholds as labelled dashed lines; returns the highest (0 if none)."""
    top = 0.0
    for threshold in thresholds:
        color = THRESHOLD_COLORS.get(threshold.category, "dimgray")
        axes.axhline(
            threshold.flow_m3_s,
            color=color,
            linestyle="--",
            linewidth=1.2,
            alpha=0.9,
            gid=f"flood-{threshold.category}",
            label="_flood threshold",  # named by its text, kept out of the legend
        )
        axes.text(
            0.005,
            threshold.flow_m3_s,
            threshold_label(threshold),
            transform=axes.get_yaxis_transform(),
            ha="left",
            va="bottom",
            fontsize=8,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1.0},
            gid=f"flood-{threshold.category}-label",
        )
        top = max(top, threshold.flow_m3_s)

    return top


def _decorate(
    figure: Figure,
    axes: Axes,
    forecast: RfcForecast,
    segment: Segment,
    *,
    t0: dt.datetime,
    top: float,
    length_km: float,
    dt_s: float,
) -> None:
    """Axes, the kcfs axis, legend, title and the run's details under the plot."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=dt.UTC)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC))
    axes.set_xlabel("Time (UTC)")
    axes.set_ylabel("Flow (m³/s)")
    # Room above the highest curve or threshold for the labels and the horizon mark.
    axes.set_ylim(bottom=0, top=top * 1.12)
    kcfs = axes.secondary_yaxis("right", functions=(_m3_s_to_kcfs, _kcfs_to_m3_s))  # type: ignore[arg-type]  # numpy arrays in, numpy arrays out
    kcfs.set_ylabel("Flow (kcfs)")
    axes.grid(True, alpha=0.3)
    # Below the axes, clear of the curves and the threshold lines.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncols=2, fontsize=9, frameon=False)
    title = f"{forecast.lid}" + (f" - {forecast.name}" if forecast.name else "")
    if forecast.state:
        title += f", {forecast.state}"
    axes.set_title(
        f"{title}\nflood category: {forecast.flood_category}   ·   reach {forecast.reach_id}"
        f"   ·   {segment.size} segments, {length_km:.1f} km",
        fontsize=11,
    )
    issued = (
        forecast.issued_time.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        if forecast.issued_time
        else "unknown"
    )
    figure.supxlabel(
        f"t0 {t0:%Y-%m-%d %H:%M} UTC · issued {issued} · Muskingum-Cunge, dt {dt_s:g} s · "
        f"channel parameters: {segment.attributes_layer}",
        x=0.01,
        ha="left",
        fontsize=8,
        color="dimgray",
    )


def summary(
    forecast: RfcForecast, segment: Segment, result: RoutingResult, dt_s: float = DT_S
) -> str:
    """One line: segments, steps, and the maximum flow at the gauge and at the last
    segment: a peak, or, on the last step, still rising at end of forecast."""
    times = step_times(forecast.t0, result.flow_m3_s.shape[0], dt_s)

    def maximum(column: int) -> str:
        peak = peak_or_horizon(result.flow_m3_s[:, column])
        flow_text = f"{peak.value:.1f} m3/s at {times[peak.step]:%Y-%m-%dT%H:%MZ}"
        return still_rising(flow_text) if peak.at_horizon else f"peak {flow_text}"

    return (
        f"{forecast.lid} reach {forecast.reach_id} ({forecast.flood_category}): "
        f"{segment.size} segments, {result.flow_m3_s.shape[0]} steps of {dt_s:g} s; "
        f"at gauge {segment.flowpath_ids[0]}: {maximum(0)}; "
        f"at last segment {segment.flowpath_ids[-1]}: {maximum(-1)}"
    )


# --- command line -------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rnr.analysis",
        description="Replace and Route tools for analysts.",
        epilog="Exit codes: 0 routed, 2 bad input, 3 gauge skipped, 4 reach not in the "
        "hydrofabric, 5 API unreachable or unusable.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    route = commands.add_parser(
        "route",
        help="route one gauge forecast, write the NetCDF and a hydrograph PNG",
        description="Route one gauge forecast offline down a local hydrofabric; write "
        "DIR/troute_output_YYYYMMDDHHMM.nc and DIR/<LID>_hydrograph.png (which needs the "
        f"analysis extra: {INSTALL_ANALYSIS_EXTRA}).",
        epilog="Exit codes: 0 routed, 2 bad input, 3 gauge skipped (reason printed), "
        "4 reach not in the hydrofabric, 5 API unreachable or unusable.",
    )
    _add_route_inputs(route)
    _add_route_options(route)
    return parser


def _add_route_inputs(route: argparse.ArgumentParser) -> None:
    """Where the forecast comes from: the hydrofabric and the NWPS answers or API."""
    route.add_argument(
        "--hydrofabric",
        type=Path,
        required=True,
        metavar="PATH",
        help="a hydrofabric .gpkg file or a folder of <layer>.parquet files",
    )
    source = route.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--forecast",
        type=Path,
        metavar="FILE.json",
        help="NWPS stage-flow forecast answer (GET /gauges/{lid}/stageflow/forecast)",
    )
    source.add_argument(
        "--nwps-url",
        metavar="URL",
        help="NWPS-compatible API root (e.g. https://api.water.noaa.gov/nwps/v1); needs --lid",
    )
    route.add_argument(
        "--lid",
        help="gauge LID: required with --nwps-url; with --forecast and no --gauge it only "
        "names the outputs (default REACH<reach id>)",
    )
    route.add_argument(
        "--gauge",
        type=Path,
        metavar="FILE.json",
        help="NWPS gauge answer (GET /gauges/{lid}): reachId, LID, flood category, name, "
        "state, flood thresholds (drawn on the hydrograph)",
    )
    route.add_argument(
        "--observation",
        type=Path,
        metavar="FILE.json",
        help="NWPS stage-flow observation answer; its latest valid flow is the initial flow",
    )
    route.add_argument(
        "--reach-id",
        help="route this NWM reach instead of the gauge's reachId; without --gauge, a quick "
        "run: flood category 'unknown', the flood-category gate is not applied",
    )


def _add_route_options(route: argparse.ArgumentParser) -> None:
    """How it is routed and where the outputs go."""
    route.add_argument(
        "--attributes-layer",
        metavar="NAME",
        help="channel attributes layer (default: flowpath-attributes-ml if present, "
        f"else {ATTRIBUTES_LAYER})",
    )
    route.add_argument(
        "--out", type=Path, default=Path("."), metavar="DIR", help="output folder (default: .)"
    )
    route.add_argument(
        "--product-id",
        default=DEFAULT_PRODUCT_ID,
        help=f"product_id attribute of the NetCDF (default: {DEFAULT_PRODUCT_ID})",
    )
    route.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per-request timeout for --nwps-url (default: 30)",
    )


def run_route(args: argparse.Namespace) -> int:
    notes: list[str] = []
    if args.nwps_url is not None:
        if not args.lid:
            raise BadInput("--nwps-url needs --lid")
        args.lid = _checked(identifiers.lid, args.lid, "--lid")
        if args.gauge or args.observation or args.reach_id:
            raise BadInput("--gauge, --observation and --reach-id go with --forecast only")
        _progress(f"fetching {args.lid.upper()} from {args.nwps_url} ...")
        prepared, gauge = asyncio.run(
            forecast_from_api(args.lid, args.nwps_url, timeout_seconds=args.timeout)
        )
    else:
        prepared, gauge, notes = forecast_from_files(
            args.forecast, args.gauge, args.observation, reach_id=args.reach_id, lid=args.lid
        )
    for note in notes:
        _progress(f"note: {note}")
    if isinstance(prepared, Skipped):
        print(f"{prepared.lid} skipped: {prepared.reason.value}: {prepared.detail}")
        return EXIT_SKIPPED
    forecast = prepared
    thresholds = gauge.flood_thresholds() if gauge is not None else ()
    if gauge is not None and not thresholds:
        _progress("note: the gauge answer defines no flood threshold flow: no threshold lines")

    _progress(f"indexing hydrofabric {args.hydrofabric} ...")
    started = time.perf_counter()
    network = load_network(args.hydrofabric, args.attributes_layer)
    _progress(
        f"indexed {network.flowpath_count} flowpaths in {time.perf_counter() - started:.1f} s"
    )
    try:
        segment = network.extract_segment(forecast.reach_id)
    except ReachNotFound as exc:
        print(f"{forecast.lid}: {exc} ({args.hydrofabric})", file=sys.stderr)
        return EXIT_UNKNOWN_REACH
    except SegmentError as exc:
        raise BadInput(f"{args.hydrofabric}: {exc}") from None

    _progress(
        f"routing {segment.size} segments over {len(forecast.valid_times)} forecast values "
        "(the first run compiles the kernel, ~8 s, unless numba's cache has it) ..."
    )
    started = time.perf_counter()
    try:
        result, data = route_to_netcdf(
            forecast,
            segment,
            # No HML product triggered this run: the forecast's own issuance stands in.
            issuance_time=forecast.issued_time or forecast.t0,
            product_id=args.product_id,
        )
    except ValueError as exc:
        source = args.forecast or f"{args.nwps_url} ({forecast.lid})"
        raise BadInput(f"{source}: the forecast cannot be routed: {exc}") from None
    _progress(f"routed in {time.perf_counter() - started:.1f} s")

    netcdf_path, png_path = _write_outputs(args.out, forecast, segment, result, data, thresholds)
    print(f"NetCDF: {netcdf_path}")
    if png_path is not None:
        print(f"PNG:    {png_path}")
    print(summary(forecast, segment, result, DT_S))
    return EXIT_OK


def _write_outputs(
    out: Path,
    forecast: RfcForecast,
    segment: Segment,
    result: RoutingResult,
    netcdf: bytes,
    thresholds: Sequence[FloodThreshold],
) -> tuple[Path, Path | None]:
    """The NetCDF, and the hydrograph PNG unless matplotlib is missing (then None)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        netcdf_path = output_path(out, output_file_name(forecast.t0))
        png_path = output_path(out, f"{forecast.lid}_hydrograph.png")
        netcdf_path.write_bytes(netcdf)
        try:
            figure = plot_hydrograph(forecast, segment, result, dt_s=DT_S, thresholds=thresholds)
        except MissingExtra as exc:
            # The NetCDF is the main output: it is written, the PNG is not.
            _progress(
                f"note: hydrograph PNG skipped (the NetCDF is written): {exc}; "
                f"to draw it, install the analysis extra: {INSTALL_ANALYSIS_EXTRA}"
            )
            return netcdf_path, None
        figure.savefig(png_path, format="png")
    except OSError as exc:
        raise BadInput(f"{out}: cannot write the outputs: {exc}") from None
    return netcdf_path, png_path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return run_route(args)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (TransientError, PermanentError) as exc:  # the API: unreachable, 4xx, not JSON
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UPSTREAM
