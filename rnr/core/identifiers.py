"""The identifiers that become keys, paths and URLs, validated once where they enter.

Three kinds of id reach the pipeline from outside: a gauge's NWS location id (from the
HML product and from the NWPS answer), a weather.gov product id (from the product
listing, then the queue) and an NWM reach id (from NWPS). Each one ends up in an S3
key, a file name or a URL path, so each is checked against a strict pattern at the
boundary where it arrives, and only the checked, normalised value travels on. Nothing
downstream re-derives an id from raw input.

* **LID**: the NWS 5-character location id of a river gauge, four letters and a
  digit (``HPDT2``). Compared and stored upper-case.
* **Product id**: weather.gov issues UUIDs; the pattern allows letters, digits, ``-``
  and ``_``, starting with a letter or digit: no ``.``, ``/`` or ``:``, so neither
  ``.`` nor ``..`` nor a path can pass.
* **Reach id**: an NWM feature id, 1 to 19 decimal digits (it must fit an int64).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from rnr.core.errors import PermanentError

LID_PATTERN = r"^[A-Z]{4}[0-9]$"
PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
REACH_ID_PATTERN = r"^[0-9]{1,19}$"

_LID = re.compile(LID_PATTERN)
_PRODUCT_ID = re.compile(PRODUCT_ID_PATTERN)
_REACH_ID = re.compile(REACH_ID_PATTERN)
_INT64_MAX = 2**63 - 1
# How much of a rejected value an error message quotes: enough to recognise it.
_QUOTED_CHARACTERS = 40


class InvalidIdentifier(PermanentError, ValueError):
    """An id that does not match its pattern; the message names the kind and the value.

    A ``ValueError`` too, so pydantic validators that call these functions report it
    as an ordinary validation error.
    """


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTED_CHARACTERS else text[:_QUOTED_CHARACTERS] + "..."


def lid(value: object) -> str:
    """``value`` as an upper-case NWS location id, or InvalidIdentifier."""
    if isinstance(value, str):
        normalised = value.strip().upper()
        if _LID.fullmatch(normalised):
            return normalised
    raise InvalidIdentifier(
        f"gauge id {_quoted(value)} is not an NWS location id (four letters and a digit)"
    )


def product_id(value: object) -> str:
    """``value`` as a weather.gov product id, or InvalidIdentifier."""
    if isinstance(value, str) and _PRODUCT_ID.fullmatch(value):
        return value
    raise InvalidIdentifier(
        f"product id {_quoted(value)} is not a weather.gov product id "
        "(1-128 letters, digits, '-' or '_', starting with a letter or digit)"
    )


def reach_id(value: object) -> str:
    """``value`` as an NWM reach id in decimal digits, or InvalidIdentifier."""
    if isinstance(value, str):
        text = value.strip()
        if _REACH_ID.fullmatch(text) and int(text) <= _INT64_MAX:
            return text
    raise InvalidIdentifier(f"reach id {_quoted(value)} is not an NWM reach id (decimal digits)")


# Field types for pydantic models at the boundaries.
Lid = Annotated[str, AfterValidator(lid)]
ProductId = Annotated[str, AfterValidator(product_id)]
