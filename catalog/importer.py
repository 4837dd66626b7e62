"""Reading catalogue files (CSV or JSON Lines) into validated rows.

Parsing and validation only; ``catalog.services.catalog_import`` writes.

Nothing in a file makes reading it raise: bytes that are not UTF-8, a NUL, a
field or line over the limit, a wrong number of columns, a value of the wrong
JSON type or a line nested too deep are each a ``RowError`` naming the line,
and the other rows go on.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from catalog.isrc import normalise_isrc
from catalog.models import LicenseClass
from config.input_guard import text_problem

COLUMNS = ("isrc", "title", "artist_email", "license_class", "label", "duration_ms")
MAX_TITLE = 300
MAX_EMAIL = 254  # the accounts' e-mail column
# No valid row comes near this; a longer CSV field or JSON line is refused
# (the csv module's own default limit, so both formats agree).
MAX_LINE_CHARS = csv.field_size_limit()


@dataclass(frozen=True)
class CatalogRow:
    line: int
    isrc: str
    title: str
    artist_email: str
    license_class: str
    label: str
    duration_ms: int | None


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _quoted(text: str, limit: int = 40) -> str:
    """A value quoted back in a message, cut short: a report stays readable."""
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


class _Invalid(Exception):
    """A field's problem, in words (``validate_row`` turns it into a RowError)."""


def validate_row(line: int, raw: dict) -> CatalogRow | RowError:
    """Check one row; the error names the first problem in words."""
    try:
        _check_values(raw)
        isrc = _isrc(raw)
        title = _title(raw)
        email = _email(raw)
        license_class, label = _license(raw)
        duration_ms = _duration(raw)
    except _Invalid as problem:
        return RowError(line, str(problem))
    return CatalogRow(line, isrc, title, email, license_class, label, duration_ms)


def _check_values(raw: dict) -> None:
    """Every column is text (a number for duration_ms) that can be stored:
    checked before any message quotes a value back."""
    for column in COLUMNS:
        value = raw.get(column)
        if value is None or (column == "duration_ms" and type(value) is int):
            continue
        if not isinstance(value, str):
            raise _Invalid(f"{column} must be text, not {_json_type(value)}")
        problem = text_problem(value)
        if problem:
            raise _Invalid(f"{column} {problem}")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _isrc(raw: dict) -> str:
    text = _text(raw.get("isrc"))
    if not text:
        raise _Invalid("ISRC is missing")
    try:
        return normalise_isrc(text)
    except ValidationError:
        raise _Invalid(f"ISRC {_quoted(text)} is not valid (CC-XXX-YY-NNNNN)") from None


def _title(raw: dict) -> str:
    title = _text(raw.get("title"))
    if not title:
        raise _Invalid("title is missing")
    if len(title) > MAX_TITLE:
        raise _Invalid(f"title is longer than {MAX_TITLE} characters")
    return title


def _email(raw: dict) -> str:
    email = _text(raw.get("artist_email")).lower()
    if not email:
        raise _Invalid("artist_email is missing")
    if len(email) > MAX_EMAIL:
        raise _Invalid(f"artist_email is longer than {MAX_EMAIL} characters")
    try:
        validate_email(email)
    except ValidationError:
        raise _Invalid(
            f"artist_email {_quoted(email)} is not an e-mail address"
        ) from None
    return email


def _license(raw: dict) -> tuple[str, str]:
    license_class = _text(raw.get("license_class")).lower()
    if license_class not in LicenseClass.values:
        raise _Invalid(
            f"license_class {_quoted(license_class)} is unknown "
            "(use independent or label)"
        )
    label = " ".join(_text(raw.get("label")).split())
    if license_class == LicenseClass.LABEL and not label:
        raise _Invalid("label is missing for a label-licensed track")
    if license_class == LicenseClass.INDEPENDENT and label:
        raise _Invalid("an independent track cannot have a label")
    if len(label) > 200:
        raise _Invalid("label is longer than 200 characters")
    return license_class, label


def _duration(raw: dict) -> int | None:
    text = _text(raw.get("duration_ms"))
    if not text:
        return None
    # ASCII digits only: int() also reads "٣" and refuses "²" and 5,000 digits.
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise _Invalid(f"duration_ms {_quoted(text)} is not a whole number") from None
    duration_ms = int(text)
    if not 0 <= duration_ms <= 2_147_483_647:
        raise _Invalid("duration_ms is out of range")
    return duration_ms


def read_rows(stream: Iterable[str], *, fmt: str) -> Iterator[CatalogRow | RowError]:
    """Yield validated rows (or errors) with their line numbers in the file."""
    if fmt == "csv":
        yield from _csv_rows(stream)
    elif fmt == "jsonl":
        yield from _jsonl_rows(stream)
    else:
        raise ValueError(f"unknown format {fmt!r}")


_CSV_ERROR = "the line cannot be read as CSV"


def _csv_rows(stream: Iterable[str]) -> Iterator[CatalogRow | RowError]:
    reader = csv.DictReader(stream)
    try:
        header = reader.fieldnames
    except csv.Error:
        yield RowError(1, f"{_CSV_ERROR} (a field longer than {MAX_LINE_CHARS})")
        return
    if header is None:
        yield RowError(1, "the file is empty (expected a header line)")
        return
    if any(text_problem(name) for name in header):
        yield RowError(1, "the header is not UTF-8 text; save the file as UTF-8")
        return
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        yield RowError(1, f"header is missing column(s): {', '.join(missing)}")
        return
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # DictReader's own line_num is not updated when its reader fails.
            yield RowError(
                reader.reader.line_num,
                f"{_CSV_ERROR} (a field longer than {MAX_LINE_CHARS} characters "
                "or a quote left open)",
            )
            continue
        yield _csv_row(reader.line_num, raw, len(header))


def _csv_row(line: int, raw: dict, width: int) -> CatalogRow | RowError:
    # DictReader puts extra fields under the key None and fills missing ones
    # with None: both are a row the header does not describe.
    if None in raw:
        return RowError(
            line, f"{width + len(raw[None])} fields, the header has {width}"
        )
    if any(value is None for value in raw.values()):
        found = sum(value is not None for value in raw.values())
        return RowError(line, f"{found} fields, the header has {width}")
    return validate_row(line, raw)


def _bounded_lines(stream: Iterable[str]) -> Iterator[tuple[int, str | None]]:
    """(line number, text), or (line number, None) for a line over the limit,
    reading no more than the limit of any line into memory at once."""
    readline = getattr(stream, "readline", None)
    if readline is None:  # a list of lines (tests): already in memory
        for number, text in enumerate(stream, start=1):
            yield number, text if len(text) <= MAX_LINE_CHARS else None
        return
    number = 0
    while chunk := readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(chunk) <= MAX_LINE_CHARS or chunk.endswith(("\n", "\r")):
            yield number, chunk
            continue
        while (rest := readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
            pass  # skip the rest of the over-long line
        yield number, None


def _jsonl_rows(stream: Iterable[str]) -> Iterator[CatalogRow | RowError]:
    for number, text in _bounded_lines(stream):
        if text is None:
            yield RowError(number, f"longer than {MAX_LINE_CHARS} characters")
            continue
        if not text.strip():
            continue
        yield _jsonl_row(number, text)


def _jsonl_row(number: int, text: str) -> CatalogRow | RowError:
    problem = text_problem(text)
    if problem:
        return RowError(number, f"the line {problem}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        return RowError(number, f"not valid JSON ({error.msg})")
    except (ValueError, RecursionError):
        return RowError(number, "not valid JSON (too deep or a number too long)")
    if not isinstance(raw, dict):
        return RowError(number, "not a JSON object")
    return validate_row(number, raw)


def detect_format(name: str, content_type: str = "") -> str:
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")) or "json" in content_type:
        return "jsonl"
    return "csv"


def text_stream(binary) -> io.TextIOWrapper:
    """Decode a binary stream as UTF-8 (a BOM is skipped), newline-preserving.

    Bytes that are not UTF-8 become lone surrogates ("surrogateescape")
    instead of an error that would stop the import halfway: the row that
    holds them is then rejected by its line (``text_problem``)."""
    return io.TextIOWrapper(
        binary, encoding="utf-8-sig", errors="surrogateescape", newline=""
    )
