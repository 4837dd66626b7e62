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


def validate_row(line: int, raw: dict) -> CatalogRow | RowError:
    """Check one row; the error names the first problem in words."""
    isrc_text = _text(raw.get("isrc"))
    if not isrc_text:
        return RowError(line, "ISRC is missing")
    try:
        isrc = normalise_isrc(isrc_text)
    except ValidationError:
        return RowError(line, f"ISRC “{isrc_text}” is not valid (CC-XXX-YY-NNNNN)")
    title = _text(raw.get("title"))
    if not title:
        return RowError(line, "title is missing")
    if len(title) > MAX_TITLE:
        return RowError(line, f"title is longer than {MAX_TITLE} characters")
    email = _text(raw.get("artist_email")).lower()
    if not email:
        return RowError(line, "artist_email is missing")
    try:
        validate_email(email)
    except ValidationError:
        return RowError(line, f"artist_email “{email}” is not an e-mail address")
    license_class = _text(raw.get("license_class")).lower()
    if license_class not in LicenseClass.values:
        return RowError(
            line,
            f"license_class “{license_class}” is unknown (use independent or label)",
        )
    label = " ".join(_text(raw.get("label")).split())
    if license_class == LicenseClass.LABEL and not label:
        return RowError(line, "label is missing for a label-licensed track")
    if license_class == LicenseClass.INDEPENDENT and label:
        return RowError(line, "an independent track cannot have a label")
    if len(label) > 200:
        return RowError(line, "label is longer than 200 characters")
    duration_text = _text(raw.get("duration_ms"))
    duration_ms = None
    if duration_text:
        try:
            duration_ms = int(duration_text)
        except ValueError:
            return RowError(line, f"duration_ms “{duration_text}” is not a number")
        if not 0 <= duration_ms <= 2_147_483_647:
            return RowError(line, "duration_ms is out of range")
    return CatalogRow(line, isrc, title, email, license_class, label, duration_ms)


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
