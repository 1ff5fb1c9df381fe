"""What only development needs, kept beside the library and out of every image.

``rnr`` and ``services`` never import this package (tests/unit/test_layers.py checks it);
it imports them freely. Nothing here is installed by ``pip install .``: it is imported
from the checkout (``make`` and ``pytest`` run from the repository root) and copied into
the local-only ``tools`` image.

- ``devstack.replay``: the stand-in for api.weather.gov and NWPS, its fault injection and
  its fixtures (``python -m devstack.replay``; ``python -m devstack.replay.make_fixtures``
  regenerates them).
- ``devstack.local``: ``make run`` (``run``), the one-shot ``bootstrap`` of an AWS
  emulator and the ``scheduler`` that invokes the Lambda-style services on their periods.
- ``devstack.brokers``: private RabbitMQ and Redis servers on free ports, for ``make run``
  and the tests.
- ``devstack.make_hydrofabric``: the synthetic hydrofabric generator, which wrote the
  sample below.
- ``devstack/data/small``: the sample hydrofabric (GeoPackage and Parquet layers) on
  which the replay fixtures' flooding gauges lie.
"""

from pathlib import Path

# The sample hydrofabric: hydrofabric.gpkg, parquet/<layer>.parquet and manifest.json.
SAMPLE_HYDROFABRIC = Path(__file__).resolve().parent / "data" / "small"
