"""Reading catalogue files (CSV or JSON Lines) into validated rows.

Parsing and validation only; ``catalog.services.catalog_import`` writes.
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

COLUMNS = ("isrc", "title", "artist_email", "license_class", "label", "duration_ms")
MAX_TITLE = 300


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


class _Invalid(Exception):
    """A field's problem, in words (``validate_row`` turns it into a RowError)."""


def validate_row(line: int, raw: dict) -> CatalogRow | RowError:
    """Check one row; the error names the first problem in words."""
    try:
        isrc = _isrc(raw)
        title = _title(raw)
        email = _email(raw)
        license_class, label = _license(raw)
        duration_ms = _duration(raw)
    except _Invalid as problem:
        return RowError(line, str(problem))
    return CatalogRow(line, isrc, title, email, license_class, label, duration_ms)


def _isrc(raw: dict) -> str:
    text = _text(raw.get("isrc"))
    if not text:
        raise _Invalid("ISRC is missing")
    try:
        return normalise_isrc(text)
    except ValidationError:
        raise _Invalid(f"ISRC “{text}” is not valid (CC-XXX-YY-NNNNN)") from None


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
    try:
        validate_email(email)
    except ValidationError:
        raise _Invalid(f"artist_email “{email}” is not an e-mail address") from None
    return email


def _license(raw: dict) -> tuple[str, str]:
    license_class = _text(raw.get("license_class")).lower()
    if license_class not in LicenseClass.values:
        raise _Invalid(
            f"license_class “{license_class}” is unknown (use independent or label)"
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
    try:
        duration_ms = int(text)
    except ValueError:
        raise _Invalid(f"duration_ms “{text}” is not a number") from None
    if not 0 <= duration_ms <= 2_147_483_647:
        raise _Invalid("duration_ms is out of range")
    return duration_ms


def read_rows(stream: Iterable[str], *, fmt: str) -> Iterator[CatalogRow | RowError]:
    """Yield validated rows (or errors) with their line numbers in the file."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            yield RowError(1, f"header is missing column(s): {', '.join(missing)}")
            return
        for raw in reader:
            yield validate_row(reader.line_num, raw)
    elif fmt == "jsonl":
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                yield RowError(number, f"not valid JSON ({error.msg})")
                continue
            if not isinstance(raw, dict):
                yield RowError(number, "not a JSON object")
                continue
            yield validate_row(number, raw)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def detect_format(name: str, content_type: str = "") -> str:
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")) or "json" in content_type:
        return "jsonl"
    return "csv"


def text_stream(binary) -> io.TextIOWrapper:
    """Decode a binary stream as UTF-8 (a BOM is skipped), newline-preserving."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
