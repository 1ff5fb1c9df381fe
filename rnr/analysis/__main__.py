"""``python -m rnr.analysis route ...``: see :mod:`rnr.analysis.route_gauge`."""

import sys

from rnr.analysis.route_gauge import main

sys.exit(main())
