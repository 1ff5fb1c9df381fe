"""``python -m services.postproc [once|serve]``."""

import sys

from services.postproc.handler import function

sys.exit(function.main())
