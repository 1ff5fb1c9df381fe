"""Tools for analysts, run by hand: ``python -m rnr.analysis route ...``.

:mod:`rnr.analysis.route_gauge` routes one gauge forecast offline (files or an
NWPS-compatible API), writes T-Route's NetCDF and draws the hydrograph.
"""
