"""``python -m services.autoscaler [once|serve]``."""

import sys

from services.autoscaler.handler import function

sys.exit(function.main())
