"""Hydrofabric identifiers (``wb-12``, ``nex-5``, ``29319``) held as int64 keys.

A national hydrofabric has millions of identifier strings; as Python strings they
would cost more than the rest of the index. A key packs a small code for the prefix
(the text before the last ``-``) and the number: ``(code << NUMBER_BITS) | number``.
:class:`SortedKeys` then finds rows by key with binary searches.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rnr.hydro.types import AnyArray, IndexArray, Int64Array

MISSING = np.int64(-1)
NUMBER_BITS = 44  # an id key is (prefix code << 44) | number


class IdCodec:
    """Identifier strings (``wb-12``, ``29319``, ``29319.0``) <-> int64 keys.

    The prefix (the text before the last '-') gets a small code shared by every table
    read through one codec, so ``nex-5`` and ``tnx-5`` stay distinct while ``cat-5``
    from two tables compare equal. Missing values become -1.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {"": 0}

    def prefix(self, code: int) -> str:
        return next(text for text, value in self._codes.items() if value == code)

    def keys(self, values: AnyArray) -> Int64Array:
        array = np.asarray(values)
        if array.dtype.kind in "iub":
            return self._numbers(array.astype(np.int64), np.ones(array.shape, bool), 0)
        if array.dtype.kind == "f":
            valid = np.isfinite(array)
            return self._numbers(array, valid, 0)
        keys = np.full(array.shape, MISSING, dtype=np.int64)
        valid = np.not_equal(array, None)  # type: ignore[call-overload]  # elementwise
        text = np.asarray(array[valid].astype(str))
        split = _split_digits(text) if text.size else None
        if split is None:  # unusual text ("29319.0", NaN, long prefixes): numpy's string ops
            not_nan = (text != "nan") & (text != "")
            valid[valid] = not_nan
            text = text[not_nan]
            if not text.size:
                return keys
            head, _, tail = np.strings.rpartition(text, "-")
            prefixes: Sequence[str] | AnyArray
            prefixes, inverse = np.unique(head, return_inverse=True)
            numbers = _parse_numbers(tail)
        else:
            prefixes, inverse, numbers = split
        codes = np.array([self._code(str(p)) for p in prefixes], dtype=np.int64)[inverse]
        keys[valid] = self._numbers(numbers, np.ones(numbers.shape, bool), codes)
        return keys

    def _code(self, prefix: str) -> int:
        return self._codes.setdefault(prefix, len(self._codes))

    @staticmethod
    def _numbers(
        numbers: AnyArray, valid: npt.NDArray[np.bool_], codes: Int64Array | int
    ) -> Int64Array:
        keys = np.full(numbers.shape, MISSING, dtype=np.int64)
        values = numbers[valid]
        if values.dtype.kind == "f" and (values != np.floor(values)).any():
            raise ValueError("identifier holds a non-integral number")
        whole = values.astype(np.int64)
        if ((whole < 0) | (whole >= (1 << NUMBER_BITS))).any():
            raise ValueError(f"identifier number outside 0..2**{NUMBER_BITS}")
        code = codes if np.isscalar(codes) else np.asarray(codes)[valid]
        keys[valid] = (np.asarray(code, dtype=np.int64) << NUMBER_BITS) | whole
        return keys


def _split_digits(
    text: npt.NDArray[np.str_],
) -> tuple[list[str], IndexArray, Int64Array] | None:
    """``prefix-digits`` strings split on their character codes, ~10x numpy's string ops.

    Returns (distinct prefixes, prefix index per value, numbers), or None when a value
    is not ASCII ``<prefix of at most 8 characters>-<1 to 18 digits>`` or plain digits.
    Works one character position at a time on contiguous rows of the transposed codes.
    """
    width = text.dtype.itemsize // 4
    if width == 0:
        return None
    chars = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, width).T.copy()
    last_dash = np.full(text.size, -1, dtype=np.int64)
    for position in range(width):
        last_dash[chars[position] == ord("-")] = position
    if last_dash.max() > 8:
        return None
    numbers = np.zeros(text.size, dtype=np.int64)
    digit_count = np.zeros(text.size, dtype=np.int64)
    packed = np.zeros(text.size, dtype=np.uint64)
    for position in range(width):
        code = chars[position]
        in_number = (position > last_dash) & (code != 0)
        digit = code.astype(np.int64) - ord("0")
        if (in_number & ((digit < 0) | (digit > 9))).any():
            return None
        numbers = np.where(in_number, numbers * 10 + digit, numbers)
        digit_count += in_number
        if position < 8:
            prefix = np.where(position < last_dash, code, 0)
            if (prefix > 127).any():
                return None
            packed |= prefix.astype(np.uint64) << np.uint64(8 * position)
    if digit_count.min() == 0 or digit_count.max() > 18:
        return None
    prefixes: list[str] = []
    inverse = np.empty(text.size, dtype=np.intp)
    unassigned = np.ones(text.size, dtype=bool)
    while unassigned.any():  # a handful of prefixes (wb, cat, nex, tnx): no sort needed
        first = int(np.argmax(unassigned))
        same = packed == packed[first]
        inverse[same] = len(prefixes)
        prefixes.append(str(text[first])[: max(int(last_dash[first]), 0)])
        unassigned &= ~same
        if len(prefixes) > 64:
            return None
    return prefixes, inverse, numbers


def _parse_numbers(text: npt.NDArray[np.str_]) -> AnyArray:
    try:
        return text.astype(np.int64)
    except ValueError:
        pass
    try:
        return text.astype(np.float64)
    except ValueError as error:
        raise ValueError(f"identifier without a numeric part: {error}") from error


def number_of(key: np.int64 | int) -> int:
    """The number part of a key (``wb-12`` -> 12)."""
    return int(key) & ((1 << NUMBER_BITS) - 1)


class SortedKeys:
    """A sorted view of an int64 key array for searchsorted lookups (-1 = missing)."""

    def __init__(self, keys: Int64Array) -> None:
        self.order = np.argsort(keys, kind="stable")
        self.sorted = keys[self.order]

    def first(self, query: Int64Array) -> IndexArray:
        """Row of the first occurrence of each query key, -1 where absent."""
        query = np.asarray(query, dtype=np.int64)
        if not self.sorted.size:
            return np.full(query.shape, -1, dtype=np.intp)
        position = np.minimum(np.searchsorted(self.sorted, query), self.sorted.size - 1)
        found = (self.sorted[position] == query) & (query != MISSING)
        return np.where(found, self.order[position], -1).astype(np.intp)

    def all(self, query: Int64Array) -> IndexArray:
        """Rows of every occurrence of every (distinct) query key."""
        query = np.unique(np.asarray(query, dtype=np.int64))
        query = query[query != MISSING]
        low = np.searchsorted(self.sorted, query, side="left")
        high = np.searchsorted(self.sorted, query, side="right")
        counts = high - low
        if not counts.sum():
            return np.empty(0, dtype=np.intp)
        starts = np.repeat(low - np.cumsum(counts) + counts, counts)
        return self.order[starts + np.arange(counts.sum())].astype(np.intp)
