"""Gauge ids from the text of an HML ("Hydrologic Markup Language") product.

An HML product, as ``api.weather.gov`` serves it in ``productText``, is not one XML
document. It opens with a WMO header (``000``, ``SRUS54 KFWR 051900``, ``HMLFWR``),
then holds one or more XML documents back to back, each with its own ``<?xml ...?>``
declaration and a ``<site id="LID">`` root, and may end with junk such as ``$$``,
``NNNN`` or a truncated line. A plain XML parser rejects such text as a whole, so it is
cut into documents at each XML declaration and every document is parsed on its own,
stopping at the end of its root element: whatever follows a root is never looked at.

The module is pure (no I/O, no logging); the worker calls :func:`extract_lids` on the
product text it fetched and gets the gauges to process, or an :class:`HmlParseError`
that it treats as permanent (the same text will never parse). A ``site`` whose id is
not an NWS location id is not a reason to drop its neighbours: it comes back in
``rejected`` with the reason, and costs only itself.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import NamedTuple, cast

from rnr.core import identifiers
from rnr.core.errors import PermanentError
from rnr.core.identifiers import InvalidIdentifier

__all__ = ["HmlParseError", "RejectedSite", "Sites", "extract_lids"]

# ``<?xml`` followed by white space is an XML declaration; ``<?xml-stylesheet`` is a
# processing instruction inside a document and must not start a new one.
_XML_DECLARATION = re.compile(r"<\?xml\s")
# A ``site`` start tag, with or without a namespace prefix.
_SITE_START_TAG = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?site[\s/>]")
# The first element start tag of a document that lacks a declaration.
_ELEMENT_START = re.compile(r"<[A-Za-z_]")
# How much of a rejected id the result quotes.
_QUOTED_ID_CHARACTERS = 40


class HmlParseError(PermanentError):
    """The product text holds XML that cannot be read, or a ``site`` without a valid id.

    ``document`` is the 1-based index of the offending XML document within the product,
    ``reason`` the parser's (or the validation's) explanation.
    """

    def __init__(self, document: int, start_line: int, reason: str) -> None:
        self.document = document
        self.start_line = start_line
        self.reason = reason
        super().__init__(
            f"HML document {document} (starting on line {start_line} of the product): {reason}"
        )


class RejectedSite(NamedTuple):
    """A ``site`` whose id is not a gauge id: ``site_id`` (shortened) and why."""

    site_id: str
    reason: str


class Sites(NamedTuple):
    """The gauges of a product: valid ids (unique, upper-cased, in order) and the rest."""

    lids: list[str]
    rejected: list[RejectedSite]


class _Document(NamedTuple):
    """One XML document cut out of the product text."""

    number: int  # 1-based, in product order
    start_line: int  # 1-based line of the product on which the document starts
    text: str


def extract_lids(product_text: str) -> Sites:
    """Return the gauge ids (``site/@id``) of an HML product: unique, upper-cased, in order,
    and the sites whose id is not an NWS location id (``rejected``).

    Elements are matched by local name, so ``site`` is found whatever namespace the
    document declares, and whether it is the root or nested in another root. Text
    before the first XML declaration (the WMO header) and after each document's root
    element (``$$``, ``NNNN``, partial lines) is ignored. A product without XML gives
    ``[]``.

    Raises:
        HmlParseError: a document is malformed (its index and the parser's reason are in
            the message), or a ``site`` has no ``id`` attribute at all.
    """
    lids: dict[str, None] = {}  # an ordered set
    rejected: list[RejectedSite] = []
    for document in _split_documents(product_text):
        for site_id in _site_ids(document):
            try:
                lids.setdefault(identifiers.lid(site_id))
            except InvalidIdentifier as exc:
                shown = site_id[:_QUOTED_ID_CHARACTERS]
                rejected.append(RejectedSite(shown, f"HML document {document.number}: {exc}"))
    return Sites(list(lids), rejected)


def _split_documents(product_text: str) -> Iterator[_Document]:
    """Cut the product into XML documents, one per XML declaration.

    Each document runs from its declaration to the next one (or to the end of the
    text); the junk between a root's end and the next declaration stays attached and is
    skipped by the parser. A product with no declaration at all but a ``site`` start tag
    is read as a single document from its first element, so a producer that drops the
    declaration still works, while free text that merely contains ``<`` does not turn
    into a parse error.
    """
    starts = [match.start() for match in _XML_DECLARATION.finditer(product_text)]
    if not starts:
        if not _SITE_START_TAG.search(product_text):
            return
        first = _ELEMENT_START.search(product_text)
        if first is None:  # pragma: no cover - a site tag is an element start
            return
        starts = [first.start()]
    ends = [*starts[1:], len(product_text)]
    for index, (start, end) in enumerate(zip(starts, ends, strict=True), start=1):
        start_line = product_text.count("\n", 0, start) + 1
        yield _Document(index, start_line, product_text[start:end])


def _site_ids(document: _Document) -> list[str]:
    """Parse one document up to the end of its root element and collect its site ids.

    ``XMLPullParser`` queues the events produced before a syntax error and raises the
    error only when it is reached, so junk after the root (which expat reports as
    "junk after document element") is never raised: reading stops at the root's end.
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    parser.feed(document.text)
    ids: list[str] = []
    depth = 0
    try:
        # Only start and end events were asked for: each carries an element.
        events = cast("Iterator[tuple[str, ET.Element]]", parser.read_events())
        for event, element in events:
            if event == "start":
                depth += 1
                if _local_name(element.tag) == "site":
                    ids.append(_site_id(element, document))
            else:
                depth -= 1
                if depth == 0:
                    return ids
        # The text ended inside the root (or before one): close() names the problem.
        parser.close()
    except ET.ParseError as exc:
        raise HmlParseError(document.number, document.start_line, str(exc)) from exc
    raise HmlParseError(  # pragma: no cover - close() raises on an unclosed root
        document.number, document.start_line, "no root element"
    )


def _site_id(site: ET.Element, document: _Document) -> str:
    """The ``id`` of a ``site`` element as written, or an HmlParseError if it has none."""
    value = site.get("id")
    if value is None:
        # Accept a namespace-qualified id attribute too (``{ns}id``).
        value = next(
            (v for k, v in site.attrib.items() if _local_name(k) == "id"),
            None,
        )
    if value is None:
        raise HmlParseError(
            document.number, document.start_line, "site element without an id attribute"
        )
    return value


def _local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``; ElementTree spells qualified names that way."""
    return tag.rpartition("}")[2]
