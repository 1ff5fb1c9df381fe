"""Tools for analysts, run by hand: ``python -m rnr.analysis route ...``.

:mod:`rnr.analysis.route_gauge` routes one gauge forecast offline (files or an
NWPS-compatible API), writes T-Route's NetCDF and draws the hydrograph: flows in m³/s
and kcfs, the gauge's flood thresholds, and a mark on a curve still rising when the
forecast ends. The hydrograph needs the ``analysis`` extra (matplotlib); the rest does not.
"""
