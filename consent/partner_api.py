"""The partners' endpoints of the JSON API: the eligibility check, the change
feed and acknowledgements (the signed export is ``consent.export_api``).

Partners call with a ``partner`` API key (``Authorization: Bearer rfk_…``),
the platform's catalogue feed with a ``catalog`` key; each key has its own
rate limit per minute (429 with ``Retry-After``). Every error is
``{"code", "message", "detail"}`` (``config.api_errors``).
"""

from datetime import datetime
from typing import Annotated, Literal

import orjson
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.security import HttpBearer
from pydantic import BaseModel, ConfigDict, Field

from config.api_errors import ApiProblem, ErrorOut, error_response
from consent.api_types import (
    Matches,
    Text,
    TrackIdentifier,
    UseSlug,
    WholeNumber,
    iso_time,
)
from consent.models import Acknowledgement, ApiKey
from consent.partners import (
    AcknowledgementRefused,
    CheckRefused,
    CursorExpired,
    CursorInvalid,
    acknowledgement_record,
    apikey_authenticate,
    cursor_parse,
    eligibility_check,
    feed_page,
    rate_limit_wait,
)
from consent.partners.check import ISRC_PATTERN, MAX_ITEMS, PUBLIC_ID_PATTERN
from consent.partners.feed import MAX_PAGE


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
KEY_ERRORS = {401: ErrorOut, 403: ErrorOut, 429: ErrorOut}

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


@router.post(
    "/eligibility/check",
    auth=partner_key,
    response={200: CheckOut, 400: CheckErrorOut, **KEY_ERRORS},
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
    # Written directly (10,000 items, by orjson: 10x json's speed); the
    # schema above documents it.
    body = orjson.dumps(
        {
            "use": answer.use,
            "as_of": iso_time(answer.as_of),
            "policy_version": answer.policy_version,
            "changes_cursor": answer.changes_cursor,
            "counts": answer.counts,
            "items": answer.items,
        }
    )
    return HttpResponse(body, content_type="application/json")


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
    response={200: ChangesOut, 400: ErrorOut, 410: ErrorOut, **KEY_ERRORS},
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

    track: TrackIdentifier = Field(description="ISRC or public track id")
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
        **KEY_ERRORS,
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
