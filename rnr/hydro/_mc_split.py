"""Where a network can be cut into runs of consecutive segments that no link joins.

Such runs never exchange water, at any step, so they can be routed at the same time by
different threads, each writing its own columns of the shared outputs: no copies, and
the results are the same to the bit as routing the whole network at once.
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt


def independent_ranges(downstream: npt.NDArray[np.intp], parts: int) -> list[tuple[int, int]]:
    """Up to ``parts`` half-open ranges ``(lo, hi)`` covering ``0 .. n``, each closed
    under the links ``i -> downstream[i]``, as close to equal in size as the network's
    cuts allow. A network with no cut (one chain, say) stays one range."""
    size = downstream.size
    if parts <= 1 or size < 2:
        return [(0, size)]
    # A cut before position c is possible unless a link spans it: min(i, d) < c <= max(i, d).
    linked = downstream >= 0
    low = np.minimum(np.arange(size)[linked], downstream[linked])
    high = np.maximum(np.arange(size)[linked], downstream[linked])
    spans = np.zeros(size + 1, np.int64)
    np.add.at(spans, low + 1, 1)
    np.add.at(spans, high + 1, -1)
    cuts = np.flatnonzero(np.cumsum(spans)[1:size] == 0) + 1
    if cuts.size == 0:
        return [(0, size)]
    bounds = [0]
    for part in range(1, parts):
        nearest = int(cuts[np.abs(cuts - part * size / parts).argmin()])
        if nearest > bounds[-1]:
            bounds.append(nearest)
    bounds.append(size)
    return list(itertools.pairwise(bounds))
