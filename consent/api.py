"""The artists' endpoints of the JSON API: their own tracks and consent.

Authenticated by a personal access token (``Authorization: Bearer rfn_…``,
no CSRF: a browser never sends that header by itself) or by the session
cookie (django-ninja's ``django_auth``, which runs Django's CSRF check on
unsafe methods, so a session PUT needs the ``X-CSRFToken`` header).

Input is parsed here rather than by ninja's typed parameters: a value ninja
rejects is a 422 with pydantic's error list, and this API promises a 400 with
one readable sentence for every bad filter, use, state or header.
"""

import json
import re
from functools import partial
from typing import Annotated, Literal

from django.http import Http404, HttpRequest, JsonResponse
from ninja import Header, Router, Schema, Status
from ninja.security import django_auth
from pydantic import Field

from accounts.api import personal_token_auth
from accounts.models import User
from catalog.models import Track
from catalog.selectors import track_for_owner, track_page_for_owner
from consent.forms import TrackListForm
from consent.idempotency import (
    Answer,
    IdempotencyKeyReused,
    idempotent_run,
    request_fingerprint,
)
from consent.models import Source, State
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

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

router = Router(tags=["artists"], auth=[personal_token_auth, django_auth])


class ErrorOut(Schema):
    detail: str


class LockedOut(Schema):
    detail: str
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


class ConsentIn(Schema):
    state: Literal["granted", "denied", "default"]


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


def _page_size(limit: str) -> int | None:
    if not limit:
        return DEFAULT_PAGE_SIZE
    # ASCII digits only: "²".isdigit() is true but int("²") fails, and
    # int("٣") is 3; a limit is typed, never an Arabic or superscript digit.
    if not (limit.isascii() and limit.isdigit() and len(limit) <= 3):
        return None
    if not 1 <= int(limit) <= MAX_PAGE_SIZE:
        return None
    return int(limit)


@router.get(
    "/me/tracks",
    response={200: TrackListOut, 400: ErrorOut},
    summary="Your tracks with their consent, page by page",
)
def my_tracks(
    request: HttpRequest,
    q: str = "",
    license: str = "",
    sort: str = "",
    use: str = "",
    state: str = "",
    eligible: str = "",
    cursor: str = "",
    limit: str = "",
):
    """The same list and filters as /tracks/: ``q`` (title or ISRC),
    ``license`` (independent, label), ``sort`` (-uploaded, uploaded, title,
    -title, -changed, changed), ``use`` with ``state`` (granted, denied,
    default) and/or ``eligible`` (yes, no). Pass ``next_cursor`` back as
    ``cursor`` for the next page; ``limit`` is 1 to 200 (default 50)."""
    form = TrackListForm(
        {
            "q": q,
            "license": license,
            "sort": sort,
            "use": use,
            "state": state,
            "eligible": eligible,
            "cursor": cursor,
        }
    )
    if not form.is_valid():
        return Status(400, {"detail": _form_error(form)})
    page_size = _page_size(limit)
    if page_size is None:
        return Status(
            400,
            {"detail": f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}."},
        )
    user = request.auth
    page = track_page_for_owner(
        owner=user,
        filters=form.filters(),
        cursor=form.cleaned_data["cursor"],
        page_size=page_size,
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


_IF_MATCH = re.compile(r'^(?:"(\d{1,10})"|(\d{1,10}))$')
_CONSENT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": ConsentIn.model_json_schema()}},
}


def _error(status: int, detail: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


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


class _BadRequest(Exception):
    """What is wrong with a request, answered as a 400 with this detail."""


def _consent_body(request: HttpRequest, use: str) -> tuple[dict, str]:
    """The parsed body and the state it asks for (checked before the track is
    looked up: a bad request is a 400 whoever's track it names)."""
    if use not in USE_ORDER:
        raise _BadRequest(f"“{use}” is not a use. Uses: {', '.join(USE_ORDER)}.")
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest('The body is not JSON. Send {"state": "granted"}.') from None
    state = body.get("state") if isinstance(body, dict) else None
    if state not in State.values:
        raise _BadRequest(
            'Send {"state": …} with granted, denied or default '
            f"(got {json.dumps(state)[:60]})."
        )
    return body, state


def _expected_version(if_match: str | None) -> int | None:
    """The consent version ``If-Match`` names (None: unconditional)."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.match(if_match.strip())
    if match is None:
        raise _BadRequest(
            'If-Match must be the track\'s consent version as its ETag, e.g. "3".'
        )
    return int(match.group(1) or match.group(2))


@router.put(
    "/me/tracks/{public_id}/consent/{use}",
    response={
        200: ConsentOut,
        400: ErrorOut,
        404: ErrorOut,
        409: LockedOut,
        412: ErrorOut,
        422: ErrorOut,
    },
    summary="Grant, deny or reset one use of one of your tracks",
    openapi_extra={"requestBody": _CONSENT_BODY},
)
def set_consent(
    request: HttpRequest,
    public_id: str,
    use: str,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
):
    """Body: ``{"state": "granted" | "denied" | "default"}`` (``default``
    follows your default for the use). Answers with the use's consent, the
    track's ``consent_version`` and ``ETag: "<consent_version>"``.

    ``If-Match: "<consent_version>"`` makes the change conditional: 412 when
    the track changed meanwhile. ``Idempotency-Key`` (1 to 255 characters)
    makes a retry safe: the same key and request within 24 hours get the
    first answer again (``Idempotent-Replayed: true``) and write nothing; the
    same key with another request is a 422. A use the policy locks is a 409
    with the reason; nothing is written on any error."""
    try:
        body, state = _consent_body(request, use)
        if_version = _expected_version(if_match)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
            raise _BadRequest("Idempotency-Key must be 1 to 255 characters.")
    except _BadRequest as error:
        return _error(400, str(error))
    user = request.auth
    try:
        track = track_for_owner(owner=user, public_id=public_id)
    except Http404:
        return _error(404, "You have no track with this id.")

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
                    method=request.method, path=request.path, body=body
                ),
                run=run,
            )
    except IdempotencyKeyReused as error:
        return _error(422, str(error))
    except VersionConflict as error:
        return _error(412, str(error))
    except ConsentLocked as error:
        return _error(409, str(error), reason=locked_reason(track.license_class, use))
    except ConsentError as error:
        return _error(400, str(error))
    # Sorted keys: the stored answer comes back from a JSON column in its own
    # key order, and a replay must be byte for byte the first answer.
    response = JsonResponse(
        answer.body, status=answer.status, json_dumps_params={"sort_keys": True}
    )
    response["ETag"] = f'"{answer.body["consent_version"]}"'
    if answer.replayed:
        response["Idempotent-Replayed"] = "true"
    return response
