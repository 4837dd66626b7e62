"""The platform's catalogue endpoints of the JSON API (a ``catalog`` API key,
or one of the platform tokens in ``REFRAIN_PLATFORM_TOKENS``).

Lives in ``consent`` because an import also gives new tracks their consent
rows and re-evaluates reclassified ones (``consent.services.catalog_import``)."""

import hmac
import io

from django.conf import settings
from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.security import HttpBearer

from catalog.importer import detect_format, read_rows, text_stream
from config.api_errors import ErrorOut, error_response
from consent.partner_api import catalog_key
from consent.services import catalog_import


class _RequestBody(io.RawIOBase):
    """The request body as a readable binary stream.

    ``HttpRequest`` has ``read()`` but is not an ``io`` object, and
    ``io.TextIOWrapper`` needs one (it asks ``readable()`` and reads into a
    buffer); this adapter streams the body without loading it whole.
    """

    def __init__(self, request: HttpRequest):
        self._request = request

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._request.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class PlatformToken(HttpBearer):
    """The platform's catalogue system: one of ``REFRAIN_PLATFORM_TOKENS``."""

    def authenticate(self, request: HttpRequest, token: str) -> str | None:
        for known in settings.REFRAIN_PLATFORM_TOKENS:
            if known and hmac.compare_digest(token.encode(), known.encode()):
                return "platform"
        return None


class RowErrorOut(Schema):
    line: int
    reason: str


class ImportReportOut(Schema):
    created: int
    updated: int
    unchanged: int
    rejected: int
    invited: int
    errors: list[RowErrorOut]


router = Router(tags=["catalogue"])

# The body is the file itself, read as a stream (not JSON, so ninja does not
# parse it): described here so that the schema and its fuzzing reach it.
_EXAMPLE_CSV = (
    "isrc,title,artist_email,license_class,label,duration_ms\n"
    "US-RC1-76-07839,Night Drive,artist@example.com,independent,,215000\n"
    "GBA1B2400001,Harbour Lights,signed@example.com,label,Northern Records,183000\n"
)
_EXAMPLE_NDJSON = (
    '{"isrc": "US-RC1-76-07839", "title": "Night Drive", '
    '"artist_email": "artist@example.com", "license_class": "independent", '
    '"label": null, "duration_ms": 215000}\n'
)
_IMPORT_BODY = {
    "required": True,
    "description": "The catalogue file, UTF-8: CSV with a header row, or JSON "
    "Lines (one object per line), with the columns isrc, title, artist_email, "
    "license_class (independent or label), label (for label) and duration_ms "
    "(optional).",
    "content": {
        "text/csv": {"schema": {"type": "string"}, "example": _EXAMPLE_CSV},
        "application/x-ndjson": {
            "schema": {"type": "string"},
            "example": _EXAMPLE_NDJSON,
        },
    },
}


_IMPORT = {
    "auth": [catalog_key, PlatformToken()],
    "response": {
        200: ImportReportOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        429: ErrorOut,
    },
    "openapi_extra": {"requestBody": _IMPORT_BODY},
}


@router.post(
    "/catalog/import",
    summary="Import tracks (CSV or JSON Lines body), upserting by ISRC",
    **_IMPORT,
)
# The first version's path, kept for the clients that use it.
@router.post("/catalog/imports", include_in_schema=False, **_IMPORT)
def import_tracks(request: HttpRequest):
    """Send the file as the request body with ``Content-Type: text/csv`` or
    ``application/x-ndjson``. Columns: isrc, title, artist_email, license_class,
    label, duration_ms. Rejected rows are listed with their line numbers and do
    not stop valid ones; sending the same file twice changes nothing."""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in ("text/csv", "application/x-ndjson", "application/jsonl"):
        return error_response(
            400,
            "unsupported_media_type",
            "Send the file as the body with Content-Type text/csv "
            "or application/x-ndjson.",
        )
    fmt = detect_format("", content_type)
    # Read the body as a stream: a catalogue file is larger than Django's
    # in-memory request limit, and the import works row by row anyway.
    # Bytes that are not UTF-8 reject their row, by line (catalog.importer).
    body = io.BufferedReader(_RequestBody(request))
    report = catalog_import(rows=read_rows(text_stream(body), fmt=fmt))
    return Status(200, report.as_dict())
