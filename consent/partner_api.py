"""The partners' endpoints of the JSON API, and the public trainability answer.

Partners call with a ``partner`` API key (``Authorization: Bearer rfk_…``),
the platform's catalogue feed with a ``catalog`` key; each key has its own
rate limit per minute (429 with ``Retry-After``). Every error is
``{"code", "message", "detail"}`` (``config.api_errors``).
"""

import json
from datetime import datetime
from typing import Annotated, Literal

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.http import http_date, quote_etag
from ninja import Path, Query, Router, Schema, Status
from ninja.security import HttpBearer
from pydantic import BaseModel, ConfigDict, Field

from config.api_errors import ApiProblem, ErrorOut, error_response
from consent.api_types import Matches, Text, UseSlug, WholeNumber
from consent.models import Acknowledgement, ApiKey, ExportSnapshot, TrackConsent
from consent.partners import (
    MEDIA_TYPES,
    AcknowledgementRefused,
    CheckRefused,
    CursorExpired,
    CursorInvalid,
    acknowledgement_record,
    apikey_authenticate,
    cursor_parse,
    eligibility_check,
    export_for,
    export_path,
    feed_page,
    rate_limit_wait,
    signature_document,
    track_by_identifier,
)
from consent.partners.check import ISRC_PATTERN, MAX_ITEMS, PUBLIC_ID_PATTERN
from consent.partners.feed import MAX_PAGE
from consent.uses import USE_ORDER


class ApiKeyAuth(HttpBearer):
    """An API key of one scope. A key of the other scope is a 403, a revoked
    one a 401 that says so; a bearer that is not an API key is left to the
    next authenticator (the platform's token, on the import)."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        token = token.strip()
        key, why = apikey_authenticate(plaintext=token)
        if key is None:
            if why == "revoked":
                raise ApiProblem(
                    401,
                    "key_revoked",
                    "This API key has been revoked: ask the platform for a new one.",
                )
            if token.startswith("rfk_"):
                raise ApiProblem(401, "unknown_key", "This API key is not known.")
            return None
        if key.scope != self.scope:
            raise ApiProblem(
                403,
                "wrong_scope",
                f"This is a {key.scope} key; this endpoint needs a {self.scope} key.",
            )
        wait = rate_limit_wait(bucket=f"key:{key.pk}", limit=key.rate_limit)
        if wait is not None:
            raise ApiProblem(
                429,
                "rate_limited",
                f"This key may make {key.rate_limit} requests a minute: "
                f"try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        return key


partner_key = ApiKeyAuth(ApiKey.Scope.PARTNER)
catalog_key = ApiKeyAuth(ApiKey.Scope.CATALOG)

router = Router(tags=["partners"])
_KEY_ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}

Identifier = Annotated[
    str,
    Matches(
        r"^[A-Za-z0-9_-]{1,22}$",
        "is not an ISRC (CC-XXX-YY-NNNNN) or a track id (1 to 22 of A-Z a-z 0-9 _ -)",
    ),
]
# The items' patterns are in the schema, and checked by the service, which
# names every item that does not match (pydantic would stop at a sentence).
IsrcItem = Annotated[
    str, Field(max_length=60, json_schema_extra={"pattern": ISRC_PATTERN})
]
TrackIdItem = Annotated[
    str, Field(max_length=60, json_schema_extra={"pattern": PUBLIC_ID_PATTERN})
]


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    use: UseSlug
    isrcs: list[IsrcItem] = Field(
        default_factory=list,
        description=f"ISRCs, hyphenated or not; with track_ids at most {MAX_ITEMS:,}",
        json_schema_extra={"maxItems": MAX_ITEMS},
    )
    track_ids: list[TrackIdItem] = Field(
        default_factory=list,
        description="Refrain's public track ids",
        json_schema_extra={"maxItems": MAX_ITEMS},
    )


class CheckItemOut(Schema):
    isrc: str | None = Field(None, description="as sent (ISRC items)")
    track_id: str | None = Field(None, description="as sent (track id items)")
    id: str | None = Field(description="the track's public id (null: unknown)")
    known: bool
    eligible: bool = Field(description="may be used for this use now")
    reason: str = Field(
        description="unknown, prohibited, granted, denied, default_granted, "
        "default_denied, no_answer_opt_in, no_answer_opt_out or "
        "policy_change_in_progress"
    )
    consent_version: int | None


class CountsOut(Schema):
    eligible: int
    not_eligible: int
    unknown: int


class CheckOut(Schema):
    use: str
    as_of: datetime
    policy_version: int
    changes_cursor: str = Field(
        description="follow GET /changes from here to hear of later changes"
    )
    counts: CountsOut
    items: list[CheckItemOut]


class CheckErrorItem(Schema):
    field: str
    index: int
    value: str


class CheckErrorOut(ErrorOut):
    items: list[CheckErrorItem] = Field(default_factory=list)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@router.post(
    "/eligibility/check",
    auth=partner_key,
    response={200: CheckOut, 400: CheckErrorOut, **_KEY_ERRORS},
    summary=f"Check up to {MAX_ITEMS:,} tracks for one use",
)
def check(request: HttpRequest, payload: CheckIn):
    """Body: ``{"use": "genai-training", "isrcs": [...]}`` and/or
    ``"track_ids": [...]``, at most 10,000 in all. One answer per item in the
    order sent (ISRCs first): ``eligible``, the ``reason`` and the track's
    ``consent_version``; a track Refrain does not know is ``known: false``
    and never eligible. ``as_of`` is when the answer was read. A malformed
    item or more than 10,000 is a 400 that lists them; nothing is answered."""
    try:
        answer = eligibility_check(
            partner=request.auth.partner,
            use=payload.use,
            isrcs=payload.isrcs,
            track_ids=payload.track_ids,
        )
    except CheckRefused as refused:
        return error_response(400, refused.code, refused.message, items=refused.items)
    # Written directly (10,000 items): the schema above documents it.
    body = json.dumps(
        {
            "use": answer.use,
            "as_of": _iso(answer.as_of),
            "policy_version": answer.policy_version,
            "changes_cursor": answer.changes_cursor,
            "counts": answer.counts,
            "items": answer.items,
        },
        separators=(",", ":"),
    )
    return HttpResponse(body, content_type="application/json")


class BuildingOut(Schema):
    status: Literal["building"]
    message: str
    retry_after: int


ExportFormat = Literal["jsonl", "csv"]


def _export_headers(response: HttpResponse, snapshot: ExportSnapshot) -> None:
    response["X-Refrain-Export-Id"] = str(snapshot.pk)
    response["X-Refrain-As-Of"] = _iso(snapshot.as_of)
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
    response={200: None, 202: BuildingOut, 400: ErrorOut, **_KEY_ERRORS},
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
    response = FileResponse(
        open(export_path(served), "rb"),  # noqa: SIM115 - FileResponse closes it
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
        **_KEY_ERRORS,
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


class ChangeOut(Schema):
    cursor: str
    id: str
    isrc: str | None
    consent_version: int
    permitted: dict[str, bool] = Field(
        description="per use: eligible after this change"
    )
    changed_at: datetime


class ChangesOut(Schema):
    changes: list[ChangeOut]
    next_cursor: str
    has_more: bool
    as_of: datetime


Cursor = Annotated[
    str,
    Matches(r"^c[0-9]{1,18}$", "is not a cursor the change feed gave out"),
]


@router.get(
    "/changes",
    auth=partner_key,
    response={200: ChangesOut, 400: ErrorOut, 410: ErrorOut, **_KEY_ERRORS},
    summary="Eligibility changes in commit order, after a cursor",
)
def changes(
    request: HttpRequest,
    cursor: Annotated[Cursor | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
):
    """Every change of a track's eligibility, oldest first, each with the
    track's consent version and what it permits per use. Send
    ``next_cursor`` back as ``cursor``; no cursor starts at the oldest change
    kept (35 days). A change committed late is never skipped. A cursor older
    than the feed keeps is a 410: download the export again and continue
    from its ``X-Refrain-Changes-Cursor``."""
    try:
        page = feed_page(after=cursor_parse(cursor), limit=limit)
    except CursorInvalid as error:
        return error_response(400, "invalid_cursor", str(error))
    except CursorExpired as error:
        return error_response(410, "cursor_expired", str(error))
    return Status(
        200,
        {
            "changes": page.changes,
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
            "as_of": page.as_of,
        },
    )


class AcknowledgementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: Identifier = Field(description="ISRC or public track id")
    use: UseSlug
    consent_version: WholeNumber = Field(ge=0, le=2**31 - 1)
    status: Literal["applied", "removed"]
    dataset: Annotated[Text, Field(min_length=1, max_length=200)] = Field(
        description="the dataset's name and version"
    )
    note: Annotated[Text, Field(max_length=500)] = ""


class AcknowledgementOut(Schema):
    id: int
    track: str = Field(description="the track's public id")
    use: str
    consent_version: int
    status: str
    dataset: str
    note: str
    created_at: datetime


@router.post(
    "/acknowledgements",
    auth=partner_key,
    response={
        201: AcknowledgementOut,
        400: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
        **_KEY_ERRORS,
    },
    summary="Say that you applied a decision or removed a track",
)
def acknowledge(request: HttpRequest, payload: AcknowledgementIn):
    """A webhook's 2xx means "received"; this means you acted: ``applied``
    the decision of ``consent_version``, or ``removed`` the track from
    ``dataset`` (its name and version). A withdrawal must be acknowledged
    within your deadline (30 days unless agreed otherwise); the artist sees
    what you acknowledged."""
    try:
        ack = acknowledgement_record(
            partner=request.auth.partner, **payload.model_dump()
        )
    except AcknowledgementRefused as refused:
        return error_response(refused.status, refused.code, refused.message)
    return Status(201, _ack_out(ack))


def _ack_out(ack: Acknowledgement) -> dict:
    return {
        "id": ack.pk,
        "track": ack.track.public_id,
        "use": ack.use,
        "consent_version": ack.consent_version,
        "status": ack.status,
        "dataset": ack.dataset,
        "note": ack.note,
        "created_at": ack.created_at,
    }


class TrainabilityOut(Schema):
    id: str
    permitted: dict[str, bool] = Field(description="per use")
    as_of: datetime
    consent_version: int


def _client_address(request: HttpRequest) -> str:
    """The caller's address as allauth's rate limits take it (behind
    ``ALLAUTH_TRUSTED_PROXY_COUNT`` proxies, from X-Forwarded-For)."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:
        return "unknown"


@router.get(
    "/tracks/{identifier}/trainability",
    auth=None,
    response={
        200: TrainabilityOut,
        304: None,
        400: ErrorOut,
        404: ErrorOut,
        429: ErrorOut,
    },
    summary="Public: what a track may be used for (no key)",
    tags=["public"],
)
def trainability(
    request: HttpRequest,
    identifier: Annotated[Identifier, Path(description="ISRC or public track id")],
):
    """``permitted`` per use, as every consumer is told. Public, cacheable
    for a minute, limited per address."""
    wait = rate_limit_wait(
        bucket=f"ip:{_client_address(request)}",
        limit=settings.REFRAIN_PUBLIC_RATE_LIMIT,
    )
    if wait is not None:
        return error_response(
            429,
            "rate_limited",
            f"Too many requests from this address: try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    track = track_by_identifier(identifier)
    if track is None:
        return error_response(404, "not_found", "No track has this ISRC or id.")
    answers = dict(
        TrackConsent.objects.filter(track=track).values_list("use", "eligible")
    )
    etag = quote_etag(f"{track.public_id}-{track.consent_version}")
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(
            {
                "id": track.public_id,
                "permitted": {use: bool(answers.get(use)) for use in USE_ORDER},
                "as_of": _iso(timezone.now()),
                "consent_version": track.consent_version,
            }
        )
    response["ETag"] = etag
    response["Cache-Control"] = (
        f"public, max-age={settings.REFRAIN_TRAINABILITY_MAX_AGE}"
    )
    return response
