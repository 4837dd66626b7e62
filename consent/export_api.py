"""The signed export of the partner API (``consent.partners.export``)."""

from typing import Annotated, Literal

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils.http import http_date, quote_etag
from ninja import Query, Router, Schema, Status
from pydantic import Field

from config.api_errors import ErrorOut, error_response
from consent.api_types import UseSlug, iso_time
from consent.models import ExportSnapshot
from consent.partner_api import KEY_ERRORS, partner_key
from consent.partners import (
    MEDIA_TYPES,
    export_for,
    export_forget,
    export_path,
    signature_document,
)

router = Router(tags=["partners"])


class BuildingOut(Schema):
    status: Literal["building"]
    message: str
    retry_after: int


ExportFormat = Literal["jsonl", "csv"]


def _export_headers(response: HttpResponse, snapshot: ExportSnapshot) -> None:
    response["X-Refrain-Export-Id"] = str(snapshot.pk)
    response["X-Refrain-As-Of"] = iso_time(snapshot.as_of)
    response["X-Refrain-Changes-Cursor"] = f"c{snapshot.feed_seq}"
    response["X-Refrain-Rows"] = str(snapshot.rows)
    response["X-Refrain-SHA256"] = snapshot.sha256
    response["X-Refrain-Signature"] = snapshot.signature
    response["X-Refrain-Key-Id"] = snapshot.key_id
    response["ETag"] = quote_etag(snapshot.sha256)
    response["Last-Modified"] = http_date(snapshot.as_of.timestamp())
    response["Link"] = (
        f'</api/v1/eligibility/export.sig?snapshot={snapshot.pk}>; rel="signature"'
    )


def _building(use: str, fmt: str) -> HttpResponse:
    retry = 10
    response = JsonResponse(
        {
            "status": "building",
            "message": f"The export of {use} ({fmt}) is being built: "
            f"ask again in {retry} s.",
            "retry_after": retry,
        },
        status=202,
    )
    response["Retry-After"] = str(retry)
    return response


@router.get(
    "/eligibility/export",
    auth=partner_key,
    response={200: None, 202: BuildingOut, 400: ErrorOut, **KEY_ERRORS},
    summary="Every track eligible for one use, as a signed file",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file; X-Refrain-SHA256 and X-Refrain-Signature "
                "(Ed25519 over the SHA-256 digest) sign it.",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export(
    request: HttpRequest,
    use: Annotated[UseSlug, Query()],
    format: Annotated[ExportFormat, Query()] = "jsonl",  # noqa: A002 - the documented name
):
    """One line (JSON Lines: ``{"id", "isrc", "consent_version"}``) or row
    (CSV with a header) per eligible track, from one consistent read. Built by
    a worker: 202 with ``Retry-After`` while it is built. Headers give the
    snapshot's ``X-Refrain-As-Of``, ``X-Refrain-SHA256``,
    ``X-Refrain-Signature`` (Ed25519 over the 32-byte SHA-256 digest, key at
    ``/.well-known/refrain-keys.json``) and ``X-Refrain-Changes-Cursor``: read
    ``GET /changes`` from it to catch up. ``export.sig`` has the signature."""
    served, _ = export_for(use=use, fmt=format)
    if served is None:
        return _building(use, format)
    try:
        handle = open(export_path(served), "rb")  # noqa: SIM115 - FileResponse closes it
    except FileNotFoundError:
        # Its file is gone (a lost disk, a web process that cannot see the
        # workers' folder): forget the snapshot and build the state anew.
        export_forget(snapshot=served)
        export_for(use=use, fmt=format)
        return _building(use, format)
    response = FileResponse(
        handle,
        content_type=MEDIA_TYPES[served.format],
        as_attachment=True,
        filename=f"refrain-{served.use}-{served.feed_seq}.{served.format}",
    )
    _export_headers(response, served)
    return response


class SignatureOut(Schema):
    snapshot: int
    alg: str
    kid: str
    use: str
    format: str
    as_of: str
    rows: int
    sha256: str
    changes_cursor: str
    signature: str = Field(description="Ed25519 over the file's SHA-256 digest")
    statement_signature: str = Field(
        description="Ed25519 over this document's other members except "
        "snapshot, signature and public_keys, as canonical JSON"
    )
    public_keys: str


@router.get(
    "/eligibility/export.sig",
    auth=partner_key,
    response={
        200: SignatureOut,
        202: BuildingOut,
        400: ErrorOut,
        404: ErrorOut,
        **KEY_ERRORS,
    },
    summary="The detached signature of an export",
)
def export_signature(
    request: HttpRequest,
    use: Annotated[UseSlug, Query()],
    format: Annotated[ExportFormat, Query()] = "jsonl",  # noqa: A002
    snapshot: Annotated[int | None, Query(ge=1, le=2**62)] = None,
):
    """For ``snapshot`` (the export's ``X-Refrain-Export-Id``), or for the
    export ``use`` and ``format`` would give now."""
    if snapshot is not None:
        found = ExportSnapshot.objects.filter(
            pk=snapshot, use=use, status=ExportSnapshot.Status.READY
        ).first()
    else:
        found, _ = export_for(use=use, fmt=format)
        if found is None:
            return _building(use, format)
    if found is None:
        return error_response(404, "not_found", "There is no such export.")
    return Status(200, signature_document(found))
