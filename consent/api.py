"""The artists' endpoints of the JSON API: their own tracks and consent.

Authenticated by a personal access token (``Authorization: Bearer rfn_…``,
no CSRF: a browser never sends that header by itself) or by the session
cookie (django-ninja's ``django_auth``, which runs Django's CSRF check on
unsafe methods, so a session PUT needs the ``X-CSRFToken`` header).

Every parameter is typed (``consent.api_types``): ninja checks it against the
schema before the view runs, and a value that does not fit is a 400 with one
readable sentence (``config.api_errors``), whoever's track the URL names.
"""

from functools import partial
from typing import Annotated

from django.http import Http404, HttpRequest, JsonResponse
from ninja import Header, Path, Query, Router, Schema, Status
from ninja.security import django_auth
from pydantic import BaseModel, ConfigDict, Field

from accounts.api import personal_token_auth
from accounts.models import User
from catalog.models import Track
from catalog.selectors import DEFAULT_SORT, track_for_owner, track_page_for_owner
from config.api_errors import ErrorOut, error_response
from consent.api_types import (
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR,
    MAX_PAGE_SIZE,
    MAX_QUERY,
    Eligibility,
    IdempotencyKey,
    IfMatch,
    LicenseName,
    PublicId,
    SortKey,
    StateName,
    UseSlug,
)
from consent.forms import TrackListForm
from consent.idempotency import (
    Answer,
    IdempotencyKeyReused,
    idempotent_run,
    request_fingerprint,
)
from consent.models import Source
from consent.policy import Policy, is_locked, locked_reason, policy_current
from consent.rows import consent_cell
from consent.selectors import consents_for_tracks, defaults_for_artist
from consent.services import (
    ConsentError,
    ConsentLocked,
    VersionConflict,
    consent_set,
    new_request_id,
)
from consent.uses import USE_ORDER

router = Router(tags=["artists"], auth=[personal_token_auth, django_auth])


class LockedOut(ErrorOut):
    reason: str


class UseConsentOut(Schema):
    state: str = Field(description="granted, denied or default")
    effective: str = Field(
        description="yes or no: the artist's answer, the default applied"
    )
    eligible: bool = Field(description="whether AI consumers may use the track")
    locked: bool = Field(description="the policy prohibits this use")
    reason: str = Field(description="why the use is locked (empty when it is not)")


class TrackOut(Schema):
    public_id: str
    title: str
    isrc: str | None = Field(description="hyphenated, CC-XXX-YY-NNNNN")
    license_class: str
    label: str | None
    consent_version: int
    consent: dict[str, UseConsentOut] = Field(description="per use slug")


class TrackListOut(Schema):
    items: list[TrackOut]
    total: int
    next_cursor: str | None
    previous_cursor: str | None


class ConsentIn(BaseModel):
    # A plain pydantic model: ninja's Schema reads attributes of any object,
    # so a JSON list or string would pass as "an object without state".
    # A member this schema does not name is refused, not ignored.
    model_config = ConfigDict(extra="forbid")

    state: StateName = Field(
        description="granted, denied, or default (follow your default for the use)"
    )


class ConsentOut(Schema):
    public_id: str
    use: str
    state: str
    effective: str
    eligible: bool
    locked: bool
    reason: str
    consent_version: int
    changed: bool = Field(description="whether this request changed the decision")
    receipt: str | None = Field(description="the consent receipt of this change")


def _use_out(
    *,
    track: Track,
    use: str,
    decision: str,
    eligible: bool,
    default: str | None,
    policy: Policy,
) -> dict:
    cell = consent_cell(
        public_id=track.public_id,
        title=track.title,
        license_class=track.license_class,
        use=use,
        decision=decision,
        eligible=eligible,
        default=default,
        policy=policy,
    )
    return {
        "state": cell.state,
        "effective": "yes" if cell.says_yes else "no",
        "eligible": cell.eligible,
        "locked": cell.locked,
        "reason": cell.reason,
    }


def _form_error(form: TrackListForm) -> str:
    parts = []
    for name, errors in form.errors.get_json_data().items():
        if name == "cursor":
            messages = [
                "not a cursor this list gave out (send next_cursor or "
                "previous_cursor back unchanged, with the same sort)"
            ]
        else:
            messages = [error["message"] for error in errors]
        parts.append(f"{name}: {' '.join(messages)}")
    return "Invalid query: " + "; ".join(parts)


_AUTH_ERRORS = {401: ErrorOut, 403: ErrorOut}


@router.get(
    "/me/tracks",
    response={200: TrackListOut, 400: ErrorOut, **_AUTH_ERRORS},
    summary="Your tracks with their consent, page by page",
)
def my_tracks(
    request: HttpRequest,
    # A parameter left out takes its default (None: any); the types are not
    # Optional, so that the schema offers no null (a default is not checked).
    q: Annotated[
        str, Query(max_length=MAX_QUERY, description="title or ISRC to look for")
    ] = "",
    license: Annotated[LicenseName, Query(None)] = None,
    sort: Annotated[SortKey, Query(DEFAULT_SORT)] = DEFAULT_SORT,
    use: Annotated[UseSlug, Query(None)] = None,
    state: Annotated[
        StateName, Query(None, description="your answer for `use` (with use)")
    ] = None,
    eligible: Annotated[
        Eligibility,
        Query(None, description="eligible for `use` (any use without it)"),
    ] = None,
    cursor: Annotated[
        str, Query(max_length=MAX_CURSOR, description="next_cursor or previous_cursor")
    ] = "",
    limit: Annotated[
        int, Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    ] = DEFAULT_PAGE_SIZE,
):
    """The same list and filters as /tracks/: ``q`` (title or ISRC),
    ``license``, ``sort``, ``use`` with ``state`` and/or ``eligible``. Pass
    ``next_cursor`` back as ``cursor`` for the next page; ``limit`` is 1 to
    200 (default 50). A value outside its list (an empty one too) is a 400
    that names it."""
    form = TrackListForm(
        {
            "q": q,
            "license": license or "",
            "sort": sort,
            "use": use or "",
            "state": state or "",
            "eligible": eligible or "",
            "cursor": cursor,
        }
    )
    if not form.is_valid():
        return _error(400, "invalid_request", _form_error(form))
    user = request.auth
    page = track_page_for_owner(
        owner=user,
        filters=form.filters(),
        cursor=form.cleaned_data["cursor"],
        page_size=limit,
        extra=form.consent_filters().as_q(),
    )
    policy = policy_current()
    states = consents_for_tracks(track_ids=[track.pk for track in page.tracks])
    defaults = defaults_for_artist(artist=user)
    items = []
    for track in page.tracks:
        per_use = states.get(track.pk, {})
        items.append(
            {
                "public_id": track.public_id,
                "title": track.title,
                "isrc": track.isrc_display or None,
                "license_class": track.license_class,
                "label": track.label.name if track.label else None,
                "consent_version": track.consent_version,
                "consent": {
                    use: _use_out(
                        track=track,
                        use=use,
                        decision=per_use.get(use, ("", False))[0],
                        eligible=per_use.get(use, ("", False))[1],
                        default=defaults.get(use),
                        policy=policy,
                    )
                    for use in USE_ORDER
                },
            }
        )
    return Status(
        200,
        {
            "items": items,
            "total": page.total,
            "next_cursor": page.next_cursor,
            "previous_cursor": page.previous_cursor,
        },
    )


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    return error_response(status, code, message, **extra)


def _consent_write(
    *,
    track: Track,
    use: str,
    state: str,
    actor: User,
    request_id: str,
    if_version: int | None,
) -> tuple[int, dict]:
    """The write behind ``set_consent`` and its answer (run at most once per
    idempotency key)."""
    result = consent_set(
        track=track,
        use=use,
        state=state,
        actor=actor,
        source=Source.API,
        request_id=request_id,
        if_version=if_version,
    )
    if is_locked(result.rule):
        # Setting what a locked use already has changes nothing, but the
        # answer is still that the artist cannot decide it.
        raise ConsentLocked("The policy does not allow this use of this track.")
    out = _use_out(
        track=track,
        use=use,
        decision=result.decision,
        eligible=result.eligible,
        # The default and the rule the change was judged by, read under
        # the track's lock.
        default=result.default,
        policy=Policy(number=0, rules={(track.license_class, use): result.rule}),
    )
    return 200, ConsentOut(
        public_id=track.public_id,
        use=use,
        **out,
        consent_version=result.consent_version,
        changed=result.changed,
        receipt=(
            result.receipt.get_absolute_url() if result.receipt is not None else None
        ),
    ).model_dump(mode="json")


def _expected_version(if_match: str | None) -> int | None:
    """The consent version ``If-Match`` names (None: unconditional); its form
    was checked against ``IfMatch``."""
    if if_match is None or if_match.strip() == "*":
        return None
    return int(if_match.strip().strip('"'))


@router.put(
    "/me/tracks/{public_id}/consent/{use}",
    response={
        200: ConsentOut,
        400: ErrorOut,
        404: ErrorOut,
        409: LockedOut,
        412: ErrorOut,
        422: ErrorOut,
        **_AUTH_ERRORS,
    },
    summary="Grant, deny or reset one use of one of your tracks",
)
def set_consent(
    request: HttpRequest,
    public_id: Annotated[PublicId, Path(description="the track's public id")],
    use: Annotated[UseSlug, Path()],
    payload: ConsentIn,
    # Absent headers are None (a default is not validated); not Optional, so
    # that the schema offers no null to send.
    if_match: Annotated[
        IfMatch,
        Header(
            None, alias="If-Match", description='the consent version, e.g. "3", or *'
        ),
    ] = None,
    idempotency_key: Annotated[
        IdempotencyKey,
        Header(None, alias="Idempotency-Key", description="1 to 255 printable ASCII"),
    ] = None,
):
    """Body: ``{"state": "granted" | "denied" | "default"}`` (``default``
    follows your default for the use). Answers with the use's consent, the
    track's ``consent_version`` and ``ETag: "<consent_version>"``.

    ``If-Match: "<consent_version>"`` makes the change conditional: 412 when
    the track changed meanwhile. ``Idempotency-Key`` (1 to 255 printable
    ASCII characters) makes a retry safe: the same key and request within 24
    hours get the first answer again (``Idempotent-Replayed: true``) and write
    nothing; the same key with another request is a 422. A use the policy
    locks is a 409 with the reason; a request that does not fit this schema is
    a 400 (checked before the track is looked up); nothing is written on any
    error."""
    state = payload.state
    if_version = _expected_version(if_match)
    user = request.auth
    try:
        track = track_for_owner(owner=user, public_id=public_id)
    except Http404:
        return _error(404, "not_found", "You have no track with this id.")

    run = partial(
        _consent_write,
        track=track,
        use=use,
        state=state,
        actor=user,
        request_id=request.headers.get("X-Request-ID", "")[:64] or new_request_id(),
        if_version=if_version,
    )
    try:
        if idempotency_key is None:
            answer = Answer(*run())
        else:
            answer = idempotent_run(
                user=user,
                key=idempotency_key,
                fingerprint=request_fingerprint(
                    method=request.method, path=request.path, body={"state": state}
                ),
                run=run,
            )
    except IdempotencyKeyReused as error:
        return _error(422, "idempotency_key_reused", str(error))
    except VersionConflict as error:
        return _error(412, "version_conflict", str(error))
    except ConsentLocked as error:
        return _error(
            409, "locked", str(error), reason=locked_reason(track.license_class, use)
        )
    except ConsentError as error:
        return _error(400, "invalid_request", str(error))
    # Sorted keys: the stored answer comes back from a JSON column in its own
    # key order, and a replay must be byte for byte the first answer.
    response = JsonResponse(
        answer.body, status=answer.status, json_dumps_params={"sort_keys": True}
    )
    response["ETag"] = f'"{answer.body["consent_version"]}"'
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response
