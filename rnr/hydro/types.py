"""Array type aliases and the kernel's float type, defined once for the hydro packages.

Shapes are given where the arrays are used: ``(n,)`` segments, ``(t, n)`` steps by
segments. The routing kernel works in float32, as T-Route's does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

F32 = np.float32

AnyArray = npt.NDArray[Any]
BoolArray = npt.NDArray[np.bool_]
Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.intp]
