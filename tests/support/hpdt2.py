"""The HPDT2 conformance case's kernel inputs, as the tests that route it need them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnr.hydro.muskingum_cunge import ChannelParameters

# kernel_input_param_df.csv column -> ChannelParameters field
_COLUMNS = {
    "dx": "length_m",
    "bw": "bottom_width_m",
    "tw": "top_width_m",
    "twcc": "floodplain_top_width_m",
    "n": "manning_n",
    "ncc": "floodplain_manning_n",
    "cs": "side_slope",
    "s0": "bed_slope",
}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Channel:
    keys: list[int]  # numeric flowpath ids, in the CSV's (upstream to downstream) order
    params: ChannelParameters
    downstream: np.ndarray


def channel(folder: Path) -> Channel:
    rows = read_rows(folder / "kernel_input_param_df.csv")
    keys = [int(float(row["key"])) for row in rows]
    position = {key: index for index, key in enumerate(keys)}
    params = ChannelParameters(
        **{
            field: np.array([float(row[column]) for row in rows])
            for column, field in _COLUMNS.items()
        }
    )
    downstream = np.array([position.get(int(float(row["downstream"])), -1) for row in rows])
    return Channel(keys, params, downstream)
