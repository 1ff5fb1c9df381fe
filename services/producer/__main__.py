"""``python -m services.producer [once|serve]``."""

import sys

from services.producer.handler import function

sys.exit(function.main())
