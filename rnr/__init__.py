"""rnr-pipeline: NWS HML products to routed river forecasts.

The library at the centre of the services: ``rnr.core`` (settings, logging, metrics,
health app, Lambda entry), ``rnr.messaging`` (RabbitMQ), ``rnr.storage`` (Redis, S3,
Secrets Manager), ``rnr.upstream`` (weather.gov and NWPS clients) and ``rnr.hydro``
(pure domain code). Services under ``services/`` only wire these together.
"""
