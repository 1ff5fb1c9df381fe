"""``python -m rnr.ops ...``: see :mod:`rnr.ops.cli`."""

import sys

from rnr.ops.cli import main

sys.exit(main())
