"""Unit tests for rnr.hydro.hml: gauge ids out of HML product text."""

from __future__ import annotations

import pytest

from rnr.core.errors import PermanentError, RnrError
from rnr.hydro.hml import HmlParseError, Sites, extract_lids

DECL = '<?xml version="1.0" encoding="UTF-8"?>'
XSI = (
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:noNamespaceSchemaLocation="http://www.nws.noaa.gov/oh/hads/xml/schemas/hml/v1/hml.xsd"'
)
HEADER = "000 \nSRUS54 KFWR 051900\nHMLFWR\n\n"


def site(lid: str, *, attrs: str = XSI, body: str | None = None) -> str:
    """One HML document shaped like the real ones (declaration, site root, data)."""
    if body is None:
        body = (
            '<observed><datum><valid timezone="UTC">2025-05-05T18:00:00-00:00</valid>'
            '<primary name="Stage" units="ft">24.30</primary>'
            '<secondary name="Flow" units="kcfs">17.00</secondary>'
            "<pedts>HGIRG</pedts></datum></observed>"
        )
    return (
        f'{DECL}\n<site {attrs} id="{lid}" name="Somewhere" generationtime="2025-05-05T19:00:00'
        f'-00:00">\n  {body}\n</site>\n'
    )


# (case name, product text, expected lids)
VALID_CASES: list[tuple[str, str, list[str]]] = [
    ("empty text", "", []),
    ("whitespace only", " \n\t\n", []),
    ("header only", HEADER, []),
    ("header and junk, no xml", HEADER + "NO HML DATA THIS HOUR\n$$\n", []),
    ("free text with angle brackets", HEADER + "stage <5 ft, flow > 2 kcfs\n$$", []),
    ("bare document", site("HPDT2"), ["HPDT2"]),
    ("header then one document", HEADER + site("HPDT2"), ["HPDT2"]),
    (
        "three documents back to back",
        HEADER + site("HPDT2") + site("BAWT2") + site("RMOT2"),
        ["HPDT2", "BAWT2", "RMOT2"],
    ),
    (
        "documents glued on one line",
        site("HPDT2").strip() + site("BAWT2").strip(),
        ["HPDT2", "BAWT2"],
    ),
    ("trailing dollars", HEADER + site("HPDT2") + "\n$$\n", ["HPDT2"]),
    ("trailing NNNN", HEADER + site("HPDT2") + "NNNN", ["HPDT2"]),
    (
        "junk between documents",
        site("HPDT2") + "\n$$\n\nMORE TEXT\n" + site("BAWT2") + "\n$$",
        ["HPDT2", "BAWT2"],
    ),
    (
        "trailing partial text after root",
        site("HPDT2") + "<site id='TRUNC",
        ["HPDT2"],
    ),
    (
        "trailing second root without declaration is junk",
        site("HPDT2") + '<site id="OTHER1"></site>',
        ["HPDT2"],
    ),
    (
        "duplicates keep first order",
        site("BAWT2") + site("HPDT2") + site("BAWT2"),
        ["BAWT2", "HPDT2"],
    ),
    ("lower case upper-cased", site("hpdt2"), ["HPDT2"]),
    ("mixed case deduplicated", site("hpdt2") + site("HPDT2"), ["HPDT2"]),
    ("id padded with spaces", site(" HPDT2 "), ["HPDT2"]),
    (
        "default namespace",
        site("HPDT2", attrs='xmlns="http://www.nws.noaa.gov/hml" ' + XSI),
        ["HPDT2"],
    ),
    (
        "prefixed namespace",
        f'{DECL}<h:site xmlns:h="urn:hml" id="HPDT2"><h:observed/></h:site>',
        ["HPDT2"],
    ),
    (
        "namespace-qualified id attribute",
        f'{DECL}<h:site xmlns:h="urn:hml" h:id="HPDT2"/>',
        ["HPDT2"],
    ),
    (
        "root is not site",
        f'{DECL}<hml><site id="HPDT2"/><group><site id="BAWT2"/></group></hml>',
        ["HPDT2", "BAWT2"],
    ),
    (
        "namespaced root with nested sites",
        f'{DECL}<products xmlns="urn:x"><site id="HPDT2"/><site id="BAWT2"/></products>',
        ["HPDT2", "BAWT2"],
    ),
    ("document without sites", f"{DECL}<report><line>nothing</line></report>", []),
    ("self-closing site", f'{DECL}<site id="HPDT2"/>', ["HPDT2"]),
    ("no declaration but a site", HEADER + '<site id="HPDT2"><x/></site>\n$$', ["HPDT2"]),
    (
        "stylesheet processing instruction is not a new document",
        f'{DECL}<?xml-stylesheet href="hml.xsl"?><site id="HPDT2"/>',
        ["HPDT2"],
    ),
    (
        "declared latin-1 encoding with non-ascii name",
        '<?xml version="1.0" encoding="ISO-8859-1"?><site id="HPDT2" name="Río Grande"/>',
        ["HPDT2"],
    ),
    ("single-quoted declaration", "<?xml version='1.0'?>\n<site id='HPDT2'/>", ["HPDT2"]),
    (
        "comments and cdata",
        f'{DECL}<!-- <site id="NOPE1"/> --><site id="HPDT2"><![CDATA[<site id="NOPE2"/>]]></site>',
        ["HPDT2"],
    ),
    ("crlf line endings", (HEADER + site("HPDT2") + "$$").replace("\n", "\r\n"), ["HPDT2"]),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in VALID_CASES],
)
def test_extract_lids_valid(text: str, expected: list[str]) -> None:
    assert extract_lids(text) == Sites(expected, [])


# (case name, product text, 1-based index of the bad document, words the message holds)
INVALID_CASES: list[tuple[str, str, int, str]] = [
    ("unclosed tag", f'{DECL}<site id="HPDT2"><observed></site>', 1, "mismatched tag"),
    ("truncated document", f'{DECL}<site id="HPDT2"><observed>', 1, "no element found"),
    ("bad attribute syntax", f"{DECL}<site id=HPDT2></site>", 1, "not well-formed"),
    ("unquoted attribute in second document", site("HPDT2") + f"{DECL}<site id=X/>", 2, ""),
    (
        "third document broken",
        HEADER + site("AAAA1") + site("BBBB2") + f'{DECL}<site id="CCCC3"><a></b></site>',
        3,
        "mismatched tag",
    ),
    ("declaration without a root", HEADER + site("HPDT2") + f"{DECL}\n$$\n", 2, ""),
    ("undefined prefix", f'{DECL}<h:site id="HPDT2"/>', 1, "unbound prefix"),
    ("site without id", f'{DECL}<site name="x"/>', 1, "without an id"),
    ("nested site without id", f'{DECL}<hml><site id="HPDT2"/><site/></hml>', 1, "without an id"),
]


@pytest.mark.parametrize(
    ("text", "document", "words"),
    [pytest.param(text, doc, words, id=name) for name, text, doc, words in INVALID_CASES],
)
def test_extract_lids_invalid(text: str, document: int, words: str) -> None:
    with pytest.raises(HmlParseError) as info:
        extract_lids(text)
    error = info.value
    assert error.document == document
    assert f"HML document {document} " in str(error)
    assert words in str(error)
    assert error.reason in str(error)


@pytest.mark.parametrize(
    "site_id",
    [
        "",
        "AB",
        "ABC",
        "ABCD1234",
        "HPD-2",
        "HP DT2",
        "HPDÉ2",
        "B@D",
        "..",
        "../ESCAPED",
        "HPDT2/..",
        "12345",
    ],
)
def test_a_site_id_that_is_not_a_location_id_costs_only_itself(site_id: str) -> None:
    text = HEADER + site("HPDT2") + site(site_id) + site("BAWT2") + "$$\n"
    sites = extract_lids(text)
    assert sites.lids == ["HPDT2", "BAWT2"]
    [rejected] = sites.rejected
    assert rejected.site_id == site_id
    assert rejected.reason.startswith("HML document 2: ")
    assert "not an NWS location id" in rejected.reason


def test_a_rejected_site_id_is_quoted_shortened() -> None:
    [rejected] = extract_lids(site("X" * 10_000)).rejected
    assert len(rejected.site_id) == 40
    assert len(rejected.reason) < 200


def test_error_is_permanent() -> None:
    """The worker dead-letters permanent errors: retrying the same text cannot help."""
    with pytest.raises(PermanentError):
        extract_lids(f"{DECL}<site>")
    assert issubclass(HmlParseError, RnrError)


def test_error_names_the_line_where_the_document_starts() -> None:
    text = HEADER + site("HPDT2") + f"{DECL}<site id=X/>"
    with pytest.raises(HmlParseError) as info:
        extract_lids(text)
    second_start = text.count("\n", 0, text.rindex(DECL)) + 1
    assert info.value.start_line == second_start
    assert f"line {second_start} of the product" in str(info.value)


def test_parse_error_is_chained_to_the_parser_error() -> None:
    with pytest.raises(HmlParseError) as info:
        extract_lids(f'{DECL}<site id="HPDT2"><a></site>')
    assert info.value.__cause__ is not None


def test_later_documents_are_still_checked_after_valid_ones() -> None:
    """A bad document is not hidden by good ones before it."""
    good = "".join(site(f"GOOD{i}") for i in range(5))
    with pytest.raises(HmlParseError) as info:
        extract_lids(good + f"{DECL}<site id='BAD1'><x></site>")
    assert info.value.document == 6


def test_many_documents_keep_order() -> None:
    lids = [f"G{chr(65 + i // 26 % 26)}{chr(65 + i % 26)}X{i % 10}" for i in range(200)]
    text = HEADER + "".join(site(lid) for lid in lids) + "$$\n"
    assert extract_lids(text) == Sites(lids, [])


def test_realistic_product() -> None:
    """A full product: header, two sites with observed and forecast data, trailer."""
    forecast = (
        '<forecast timezone="UTC" issued="2025-05-05T18:30:00-00:00">'
        + "".join(
            f'<datum><valid timezone="UTC">2025-05-06T{h:02d}:00:00-00:00</valid>'
            f'<primary name="Stage" units="ft">{30 + h / 10:.2f}</primary>'
            f'<secondary name="Flow" units="kcfs">{20 + h:.2f}</secondary>'
            "<pedts>HGIFF</pedts></datum>"
            for h in range(0, 24, 3)
        )
        + "</forecast>"
    )
    text = (
        HEADER
        + site("HPDT2", body=forecast)
        + "\n"
        + site("bawt2", attrs='xmlns="http://www.nws.noaa.gov/hml" ' + XSI, body=forecast)
        + "\n$$\n"
    )
    assert extract_lids(text).lids == ["HPDT2", "BAWT2"]
