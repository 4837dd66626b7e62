import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import token_create
from catalog.models import Track
from catalog.selectors import SORT_LABELS
from consent.idempotency import idempotency_records_purge
from consent.models import (
    IdempotencyRecord,
    LedgerEntry,
    Receipt,
    Source,
    State,
    TrackConsent,
)
from consent.services import (
    consent_set,
    defaults_set,
    trackconsent_create_missing,
)
from consent.uses import USE_ORDER
from tests.api_errors import api_error
from tests.factories import TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/me/tracks"
GENAI = "genai-training"
CSRF_SECRET = "a" * 16 + "B" * 16  # a well-formed (unmasked) CSRF secret


@pytest.fixture(autouse=True)
def _own_cache_space(settings):
    """Search totals are cached per artist; give each test its own key space
    (on SQLite a rolled-back test hands the next one the same artist ids)."""
    cache = dict(settings.CACHES["default"])
    prefix = cache.get("KEY_PREFIX") or "refrain-test"
    cache["KEY_PREFIX"] = f"{prefix}:{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cache}


def _track(artist, **kwargs) -> Track:
    """A track as uploads make them: with its one consent row per use."""
    track = TrackFactory(artist=artist, **kwargs)
    trackconsent_create_missing(track_ids=[track.pk])
    return track


@pytest.fixture
def artist():
    return UserFactory()


@pytest.fixture
def token(artist) -> str:
    _, plaintext = token_create(user=artist, name="tests")
    return plaintext


@pytest.fixture
def api(token):
    """A client that authenticates with the artist's token (and enforces
    CSRF, to show that token requests need none)."""
    client = Client(enforce_csrf_checks=True)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def _consent_url(track: Track, use: str = GENAI) -> str:
    return f"/api/v1/me/tracks/{track.public_id}/consent/{use}"


def _put(client, track, state="granted", use=GENAI, body=None, **headers):
    payload = json.dumps({"state": state}) if body is None else body
    return client.put(
        _consent_url(track, use),
        data=payload,
        content_type="application/json",
        headers=headers,
    )


def _written(track: Track) -> dict:
    """Everything a consent change writes, to compare before and after."""
    return {
        "ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", flat=True)),
        "consents": sorted(
            TrackConsent.objects.filter(track=track).values_list(
                "use", "decision", "eligible", "updated_at"
            )
        ),
        "version": Track.objects.values_list("consent_version", flat=True).get(
            pk=track.pk
        ),
        "receipts": Receipt.objects.count(),
        "idempotency": list(
            IdempotencyRecord.objects.values_list("key", "status", "response")
        ),
    }


def _ids(response) -> list[str]:
    return [item["public_id"] for item in response.json()["items"]]


def _use(state="default", effective="no", eligible=False, locked=False, reason=""):
    return {
        "state": state,
        "effective": effective,
        "eligible": eligible,
        "locked": locked,
        "reason": reason,
    }


# --- GET /me/tracks -----------------------------------------------------------------


def test_the_list_shows_the_callers_tracks_with_their_consent(api, artist):
    # given an independent track with one grant, a label track, and a track of
    # another artist
    indie = _track(artist, title="Night Drive", isrc="QZRFN2500001")
    consent_set(
        track=indie, use=GENAI, state="granted", actor=artist, source=Source.WEB
    )
    signed = _track(artist, title="Harbour Lights", isrc=None, signed=True)
    _track(UserFactory(), title="Not yours")

    # when the artist lists their tracks
    response = api.get(LIST_URL, {"sort": "title"})

    # then exactly their tracks are listed, each use with its state
    assert response.status_code == 200
    reason = "Label-licensed: the platform does not allow {} of this track"
    assert response.json() == {
        "items": [
            {
                "public_id": signed.public_id,
                "title": "Harbour Lights",
                "isrc": None,
                "license_class": "label",
                "label": signed.label.name,
                "consent_version": 0,
                "consent": {
                    GENAI: _use(
                        locked=True,
                        reason=reason.format("generative AI training"),
                    ),
                    "ai-training": _use(
                        locked=True, reason=reason.format("other AI training")
                    ),
                    "ai-inference": _use(
                        locked=True, reason=reason.format("input to AI features")
                    ),
                    "data-mining": _use(
                        locked=True, reason=reason.format("data mining")
                    ),
                },
            },
            {
                "public_id": indie.public_id,
                "title": "Night Drive",
                "isrc": "QZ-RFN-25-00001",
                "license_class": "independent",
                "label": None,
                "consent_version": 1,
                "consent": {
                    GENAI: _use("granted", "yes", eligible=True),
                    "ai-training": _use(),
                    "ai-inference": _use(),
                    "data-mining": _use(),
                },
            },
        ],
        "total": 2,
        "next_cursor": None,
        "previous_cursor": None,
    }


def test_the_list_pages_by_cursor(api, artist):
    # given seven tracks
    for _ in range(7):
        _track(artist)
    _track(UserFactory())
    expected = list(
        Track.objects.filter(artist=artist)
        .order_by("-uploaded_at", "-id")
        .values_list("public_id", flat=True)
    )

    # when the artist walks the list three at a time
    seen, cursor, pages = [], "", 0
    while True:
        response = api.get(LIST_URL, {"limit": 3, "cursor": cursor})
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == 7
        seen += _ids(response)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    # then every track comes once, in order, on three pages
    assert seen == expected
    assert pages == 3
    # and the default page size is 50
    assert len(_ids(api.get(LIST_URL))) == 7


def test_the_previous_cursor_goes_back(api, artist):
    for _ in range(5):
        _track(artist)
    first = api.get(LIST_URL, {"limit": 2}).json()
    second = api.get(LIST_URL, {"limit": 2, "cursor": first["next_cursor"]}).json()

    back = api.get(LIST_URL, {"limit": 2, "cursor": second["previous_cursor"]})

    assert _ids(back) == [item["public_id"] for item in first["items"]]


@pytest.fixture
def three_tracks(artist):
    granted = _track(artist, title="Alpha", isrc="QZRFN2500011")
    consent_set(
        track=granted, use=GENAI, state="granted", actor=artist, source=Source.WEB
    )
    on_default = _track(artist, title="Bravo", isrc="QZRFN2500012")
    signed = _track(artist, title="Charlie", isrc="QZRFN2500013", signed=True)
    return granted, on_default, signed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"license": "label"}, ["signed"]),
        ({"license": "independent"}, ["granted", "on_default"]),
        ({"use": GENAI, "state": "granted"}, ["granted"]),
        ({"use": GENAI, "state": "default"}, ["on_default", "signed"]),
        ({"use": "ai-training", "state": "granted"}, []),
        ({"eligible": "yes"}, ["granted"]),
        ({"eligible": "no"}, ["on_default", "signed"]),
        ({"use": GENAI, "eligible": "no"}, ["on_default", "signed"]),
        ({"q": "brav"}, ["on_default"]),
        ({"q": "QZ-RFN-25-00013"}, ["signed"]),
        ({"sort": "-title"}, ["signed", "on_default", "granted"]),
    ],
    ids=[
        "license-label",
        "license-independent",
        "use-granted",
        "use-default",
        "use-granted-none",
        "eligible",
        "not-eligible",
        "use-not-eligible",
        "title-search",
        "isrc-search",
        "sort",
    ],
)
def test_the_list_has_the_filters_of_the_web_list(api, three_tracks, query, expected):
    granted, on_default, signed = three_tracks
    names = {"granted": granted, "on_default": on_default, "signed": signed}
    query = {"sort": "title", **query}

    response = api.get(LIST_URL, query)

    assert response.status_code == 200
    assert _ids(response) == [names[name].public_id for name in expected]
    assert response.json()["total"] == len(expected)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"license": "bogus"}, "license: “bogus” is not one of independent, label."),
        (
            {"sort": "newest"},
            "sort: “newest” is not one of -uploaded, uploaded, title, -title, "
            "-changed, changed.",
        ),
        (
            {"use": "ai-music"},
            "use: “ai-music” is not one of genai-training, ai-training, "
            "ai-inference, data-mining.",
        ),
        (
            {"use": GENAI, "state": "maybe"},
            "state: “maybe” is not one of granted, denied, default.",
        ),
        ({"state": "granted"}, "state: Choose the use this answer is about."),
        ({"eligible": "perhaps"}, "eligible: “perhaps” is not one of yes, no."),
        (
            {"cursor": "garbage"},
            "cursor: not a cursor this list gave out (send next_cursor or "
            "previous_cursor back unchanged, with the same sort)",
        ),
        ({"q": "x" * 201}, "q: must have at most 200 characters (it has 201)."),
    ],
    ids=["license", "sort", "use", "state", "state-no-use", "eligible", "cursor", "q"],
)
def test_a_bad_filter_is_a_400_that_says_why(api, artist, query, message):
    _track(artist)

    response = api.get(LIST_URL, query)

    assert response.status_code == 400
    assert response.json() == api_error("invalid_request", f"Invalid query: {message}")


def _b64(position) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "position"),
    [
        ("title", ["next", "\ud800", 1, "title"]),
        ("title", ["next", "a\x00", 1, "title"]),
        ("title", ["next", "x", 2**70, "title"]),
        ("title", ["next", ["x"], 1, "title"]),
        ("uploaded", ["next", "0001-01-01T00:00:00+14:00", 1, "uploaded"]),
        ("uploaded", ["prev", "9999-12-31T23:59:59-14:00", 1, "uploaded"]),
        ("uploaded", ["next", 1e308, 1, "uploaded"]),
    ],
    ids=["surrogate", "nul", "huge-id", "list", "year-0", "year-10000", "number"],
)
def test_a_hostile_cursor_is_a_400_never_a_500(api, artist, sort, position):
    _track(artist)

    response = api.get(LIST_URL, {"sort": sort, "cursor": _b64(position)})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request",
        "Invalid query: cursor: not a cursor this list gave out (send "
        "next_cursor or previous_cursor back unchanged, with the same sort)",
    )


@pytest.mark.parametrize("limit", ["٣", "１０", "9" * 5000])
def test_a_limit_in_other_digits_is_a_400(api, limit):
    response = api.get(LIST_URL, {"limit": limit})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid query: limit: ")


@pytest.mark.parametrize("title", ["a\u0000b", "\ud800"], ids=["nul", "surrogate"])
def test_a_cursor_spelling_text_no_title_holds_is_a_400(api, artist, title):
    # given a well-formed cursor of the title sort whose position is a NUL or
    # a lone surrogate (a 500 from the database before)
    _track(artist)
    position = json.dumps(["next", title, 1, "title"]).encode()
    cursor = base64.urlsafe_b64encode(position).decode().rstrip("=")

    response = api.get(LIST_URL, {"sort": "title", "cursor": cursor})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid query: cursor: not a cursor")


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "must be at least 1 (got “0”)"),
        ("201", "must be at most 200 (got “201”)"),
        ("-1", "must be at least 1 (got “-1”)"),
        ("ten", "“ten” is not a whole number"),
        ("1.5", "“1.5” is not a whole number"),
        ("²", "“²” is not a whole number"),
    ],
)
def test_a_bad_limit_is_a_400(api, limit, message):
    response = api.get(LIST_URL, {"limit": limit})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request", f"Invalid query: limit: {message}."
    )


def test_several_bad_parameters_are_named_in_one_answer(api):
    response = api.get(LIST_URL, {"limit": "0", "use": "x", "q": "q" * 201})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request",
        "Invalid query: q: must have at most 200 characters (it has "
        "201); use: “x” is not one of genai-training, ai-training, "
        "ai-inference, data-mining; limit: must be at least 1 (got “0”).",
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "use",
            "“” is not one of genai-training, ai-training, ai-inference, data-mining",
        ),
        ("limit", "“” is not a whole number"),
    ],
)
def test_an_empty_value_is_not_a_value(api, artist, name, message):
    # given an empty filter (the schema lists the values; "" is not one)
    _track(artist)

    response = api.get(LIST_URL, {name: ""})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request", f"Invalid query: {name}: {message}."
    )


def test_limit_200_is_allowed(api, artist):
    _track(artist)
    assert api.get(LIST_URL, {"limit": "200"}).status_code == 200


def _list_queries(client, query) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, query)
    assert response.status_code == 200
    assert response.json()["items"]
    return len(queries)


@pytest.mark.parametrize(
    "query",
    [{}, {"use": GENAI, "state": "default"}, {"eligible": "no"}, {"q": "Track"}],
    ids=["plain", "consent-filter", "eligible-filter", "search"],
)
def test_the_list_costs_a_fixed_number_of_queries(
    api,
    artist,
    query,
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    # given ten tracks (after commit, cached search totals are retired), and
    # one request made already, which records the token's last use
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(10):
            _track(artist)
    api.get(LIST_URL)
    query = {"limit": 200, **query}

    # when the artist lists them, and later lists sixty (at most: the token,
    # the page, the total, the policy, the consents, the defaults; a title
    # search adds the planner hint and its savepoint)
    with django_assert_max_num_queries(9):
        ten = _list_queries(api, query)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(50):
            _track(artist)
    with django_assert_max_num_queries(9):
        sixty = _list_queries(api, query)

    # then both cost the same queries, and every track is there
    assert sixty == ten
    response = api.get(LIST_URL, query)
    assert len(response.json()["items"]) == 60
    assert response.json()["total"] == 60


def test_the_list_works_with_the_session(client, artist):
    _track(artist)
    client.force_login(artist)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert response.json()["total"] == 1


def test_the_list_needs_authentication():
    response = Client().get(LIST_URL)
    assert response.status_code == 401


# --- PUT /me/tracks/{public_id}/consent/{use} --------------------------------------


def test_put_sets_the_consent_and_answers_with_the_etag(api, artist):
    # given an independent track on default
    track = _track(artist)

    # when the artist grants generative AI training through the API
    response = _put(api, track, "granted")

    # then the answer is the use's consent, the new version and its ETag
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    receipt = Receipt.objects.get()
    assert response.json() == {
        "public_id": track.public_id,
        "use": GENAI,
        "state": "granted",
        "effective": "yes",
        "eligible": True,
        "locked": False,
        "reason": "",
        "consent_version": 1,
        "changed": True,
        "receipt": f"/receipts/{receipt.public_id}.json",
    }
    # and exactly one ledger row records it, from the API, by the artist
    entry = LedgerEntry.objects.get()
    assert (
        entry.track_id,
        entry.use,
        entry.old_state,
        entry.new_state,
        entry.source,
        entry.actor_id,
        entry.consent_version,
    ) == (track.pk, GENAI, "default", "granted", "api", artist.pk, 1)
    assert entry.request_id
    assert TrackConsent.objects.values_list("decision", "eligible").get(
        track=track, use=GENAI
    ) == ("granted", True)
    track.refresh_from_db()
    assert track.consent_version == 1


def test_put_takes_the_request_id_header(api, artist):
    track = _track(artist)
    _put(api, track, "granted", **{"X-Request-ID": "req-42"})
    assert LedgerEntry.objects.get().request_id == "req-42"


def test_put_of_the_same_state_writes_nothing(api, artist):
    track = _track(artist)
    _put(api, track, "denied")
    before = _written(track)

    response = _put(api, track, "denied")

    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert response.json()["changed"] is False
    assert response.json()["receipt"] is None
    assert _written(track) == before


def test_put_default_goes_back_to_the_artists_default(api, artist):
    track = _track(artist)
    _put(api, track, "granted")

    response = _put(api, track, "default")

    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["effective"], body["eligible"]) == (
        "default",
        "no",
        False,
    )
    assert body["consent_version"] == 2
    assert LedgerEntry.objects.order_by("consent_version").last().new_state == (
        "default"
    )


def test_put_default_follows_a_default_of_yes(api, artist):
    # given an artist whose default for the use is yes, and a track they denied
    track = _track(artist)
    _put(api, track, "denied")
    defaults_set(
        artist=artist,
        defaults={GENAI: "granted"},
        actor=artist,
        apply_to_existing=True,
    )

    # when they put the track back on default
    response = _put(api, track, "default")

    # then the answer says the default applies, and it is yes
    body = response.json()
    assert (body["state"], body["effective"], body["eligible"]) == (
        "default",
        "yes",
        True,
    )
    listed = api.get(LIST_URL).json()["items"][0]["consent"][GENAI]
    assert listed == _use("default", "yes", eligible=True)


def test_put_works_with_the_session_and_its_csrf_token(artist):
    # given a signed-in browser that holds the CSRF cookie
    track = _track(artist)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(artist)
    browser.cookies[django_settings.CSRF_COOKIE_NAME] = CSRF_SECRET

    # when it sends the token in the header
    response = _put(browser, track, "granted", **{"X-CSRFToken": CSRF_SECRET})

    # then the change is made
    assert response.status_code == 200
    assert LedgerEntry.objects.filter(track=track).count() == 1


@pytest.mark.parametrize(
    ("use", "body", "detail"),
    [
        (
            "ai-music",
            '{"state": "granted"}',
            "Invalid path: use: “ai-music” is not one of genai-training, "
            "ai-training, ai-inference, data-mining.",
        ),
        (
            GENAI,
            '{"state": "maybe"}',
            "Invalid body: state: “maybe” is not one of granted, denied, default.",
        ),
        (
            GENAI,
            '{"state": 1}',
            "Invalid body: state: 1 is not one of granted, denied, default.",
        ),
        (
            GENAI,
            '{"decision": "granted"}',
            "Invalid body: state: is required; decision: is not a member this "
            "body takes.",
        ),
        (
            GENAI,
            '["granted"]',
            'Invalid body: must be a JSON object (got ["granted"]).',
        ),
        (GENAI, "state=granted", "Cannot parse request body."),
        (GENAI, "", "Invalid body: nothing was sent."),
        # the input gate answers before the API parses it
        (GENAI, "[" * 100_000, "The JSON body is nested deeper than 32 levels."),
    ],
    ids=[
        "unknown-use",
        "bad-state",
        "state-not-a-string",
        "no-state",
        "not-an-object",
        "not-json",
        "empty-body",
        "nested-too-deep",
    ],
)
def test_a_bad_use_or_state_is_a_400_and_writes_nothing(api, artist, use, body, detail):
    track = _track(artist)
    _put(api, track, "granted")
    before = _written(track)

    response = _put(api, track, use=use, body=body, **{"Idempotency-Key": "k1"})

    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert _written(track) == before


@pytest.mark.parametrize("whose", ["another artist's", "unknown"])
def test_another_artists_or_an_unknown_track_is_a_404(api, artist, whose):
    theirs = _track(UserFactory())
    if whose == "unknown":
        theirs.public_id = "doesNotExist123"
    before = _written(theirs)

    response = _put(api, theirs, "granted", **{"Idempotency-Key": "k1"})

    assert response.status_code == 404
    assert response.json() == api_error("not_found", "You have no track with this id.")
    assert _written(theirs) == before
    assert LedgerEntry.objects.count() == 0


@pytest.mark.parametrize("state", ["granted", "denied", "default"])
def test_a_use_the_policy_locks_is_a_409_with_the_reason(api, artist, state):
    # given a label-licensed track (every use prohibited by the shipped policy)
    track = _track(artist, signed=True)
    before = _written(track)

    # when the artist tries to set a use, even to what it already is
    response = _put(api, track, state, **{"Idempotency-Key": f"lock-{state}"})

    # then it is refused with the reason, and nothing is written (not even
    # the idempotency record)
    assert response.status_code == 409
    assert response.json() == api_error(
        "locked",
        "The policy does not allow this use of this track.",
        reason="Label-licensed: the platform does not allow generative AI "
        "training of this track",
    )
    assert _written(track) == before
    assert LedgerEntry.objects.count() == 0


def test_if_match_makes_the_change_conditional(api, artist):
    track = _track(artist)

    # the current version, quoted or not, or "*", lets the change through
    assert _put(api, track, "granted", **{"If-Match": '"0"'}).status_code == 200
    assert _put(api, track, "denied", **{"If-Match": "1"}).status_code == 200
    ok = _put(api, track, "granted", **{"If-Match": "*"})
    assert ok.status_code == 200
    assert ok["ETag"] == '"3"'
    before = _written(track)

    # a stale one is a 412, and nothing is written
    response = _put(api, track, "denied", **{"If-Match": '"2"'})

    assert response.status_code == 412
    assert response.json() == api_error(
        "version_conflict",
        "The track changed meanwhile (version 3).",
    )
    assert _written(track) == before
    # so is a version no track can have yet (beyond a 32-bit integer)
    huge = _put(api, track, "denied", **{"If-Match": '"9999999999"'})
    assert huge.status_code == 412
    assert _written(track) == before


@pytest.mark.parametrize("value", ["abc", 'W/"1"', '"1", "2"', '""'])
def test_a_malformed_if_match_is_a_400(api, artist, value):
    track = _track(artist)
    before = _written(track)

    response = _put(api, track, "granted", **{"If-Match": value})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request",
        "Invalid header: If-Match: must be the track's consent version "
        'as its ETag, e.g. "3".',
    )
    assert _written(track) == before


@pytest.mark.parametrize(
    "header",
    ["Bearer rfn_not-a-token", "Bearer revoked"],
    ids=["unknown", "revoked"],
)
def test_a_bad_token_is_a_401_and_writes_nothing(artist, header):
    track = _track(artist)
    if header == "Bearer revoked":
        from accounts.services import token_revoke

        token, plaintext = token_create(user=artist, name="old")
        token_revoke(user=artist, token_id=token.pk)
        header = f"Bearer {plaintext}"
    before = _written(track)
    client = Client(enforce_csrf_checks=True)

    response = _put(client, track, "granted", Authorization=header)

    assert response.status_code == 401
    assert response.json() == api_error(
        "unauthorized", "The access token is unknown or has been revoked."
    )
    assert _written(track) == before


def test_a_bad_token_is_not_rescued_by_the_session(artist):
    # a request that presents a bearer token is judged by it alone
    track = _track(artist)
    browser = Client()
    browser.force_login(artist)

    response = _put(browser, track, "granted", Authorization="Bearer rfn_wrong")

    assert response.status_code == 401
    assert LedgerEntry.objects.count() == 0


def test_the_session_without_a_csrf_token_is_a_403_and_writes_nothing(artist):
    # given a signed-in browser (a forged cross-site request carries the
    # session cookie, but cannot read or send the CSRF token)
    track = _track(artist)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(artist)
    browser.cookies[django_settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    before = _written(track)

    response = _put(browser, track, "granted")

    assert response.status_code == 403
    assert response.json() == api_error("forbidden", "CSRF check Failed.")
    assert _written(track) == before


def test_no_credentials_is_a_401(artist):
    track = _track(artist)
    response = _put(Client(), track, "granted")
    assert response.status_code == 401
    assert LedgerEntry.objects.count() == 0


# --- Idempotency-Key ----------------------------------------------------------------


def test_a_retry_with_the_same_key_replays_the_first_answer(api, artist):
    # given a change made with an idempotency key
    track = _track(artist)
    first = _put(api, track, "granted", **{"Idempotency-Key": "retry-1"})
    assert first.status_code == 200
    # and a later change by other means
    consent_set(track=track, use=GENAI, state="denied", actor=artist, source="web")
    before = _written(track)

    # when the client retries the first request
    again = _put(api, track, "granted", **{"Idempotency-Key": "retry-1"})

    # then it gets exactly the first answer, and nothing is written
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again["ETag"] == first["ETag"] == '"1"'
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _written(track) == before
    assert LedgerEntry.objects.filter(source="api").count() == 1


def test_the_fingerprint_ignores_json_formatting(api, artist):
    track = _track(artist)
    first = _put(api, track, body='{"state":"granted"}', **{"Idempotency-Key": "k"})

    again = _put(api, track, body='{ "state" : "granted" }', **{"Idempotency-Key": "k"})

    assert again.status_code == 200
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("change", ["body", "path"])
def test_a_key_reused_for_another_request_is_a_422(api, artist, change):
    track = _track(artist)
    _put(api, track, "granted", **{"Idempotency-Key": "once"})
    before = _written(track)

    if change == "body":
        response = _put(api, track, "denied", **{"Idempotency-Key": "once"})
    else:
        response = _put(
            api, track, "granted", use="data-mining", **{"Idempotency-Key": "once"}
        )

    assert response.status_code == 422
    assert response.json() == api_error(
        "idempotency_key_reused",
        "This Idempotency-Key was already used for a different request; "
        "use a new key for a new request.",
    )
    assert _written(track) == before


def test_keys_belong_to_one_user(api, artist):
    other = UserFactory()
    _, other_token = token_create(user=other, name="theirs")
    mine, theirs = _track(artist), _track(other)

    first = _put(api, mine, "granted", **{"Idempotency-Key": "shared"})
    second = _put(
        Client(),
        theirs,
        "granted",
        **{"Idempotency-Key": "shared", "Authorization": f"Bearer {other_token}"},
    )

    assert (first.status_code, second.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in second
    assert LedgerEntry.objects.count() == 2


def test_a_key_older_than_a_day_is_claimed_afresh(api, artist):
    track = _track(artist)
    _put(api, track, "granted", **{"Idempotency-Key": "old"})
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    response = _put(api, track, "denied", **{"Idempotency-Key": "old"})

    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response
    assert response.json()["state"] == "denied"
    assert IdempotencyRecord.objects.get().response["state"] == "denied"


def test_purge_removes_only_records_older_than_a_day(api, artist):
    track = _track(artist)
    _put(api, track, "granted", **{"Idempotency-Key": "old"})
    _put(api, track, "denied", **{"Idempotency-Key": "new"})
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    assert idempotency_records_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_a_rejected_request_stores_no_answer(api, artist):
    # a 412 is not stored: the retry is judged again
    track = _track(artist)
    _put(api, track, "granted")
    stale = _put(api, track, "denied", **{"If-Match": "0", "Idempotency-Key": "k"})
    assert stale.status_code == 412
    assert not IdempotencyRecord.objects.exists()

    fresh = _put(api, track, "denied", **{"If-Match": "0", "Idempotency-Key": "k"})
    assert fresh.status_code == 412
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "clé"], ids=["empty", "256", "latin-1"])
def test_a_bad_idempotency_key_is_a_400(api, artist, key):
    track = _track(artist)
    before = _written(track)

    response = _put(api, track, "granted", **{"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.json() == api_error(
        "invalid_request",
        "Invalid header: Idempotency-Key: must be 1 to 255 printable ASCII characters.",
    )
    assert _written(track) == before


def test_a_key_of_255_characters_is_accepted(api, artist):
    track = _track(artist)
    response = _put(api, track, "granted", **{"Idempotency-Key": "k" * 255})
    assert response.status_code == 200
    assert IdempotencyRecord.objects.get().key == "k" * 255


# --- The schema ----------------------------------------------------------------------


def _param_schema(operation: dict, name: str) -> dict:
    """A parameter's schema, its ``null`` alternative (an optional value) left
    out."""
    schema = next(p for p in operation["parameters"] if p["name"] == name)["schema"]
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    assert len(options) == 1
    return options[0]


def test_the_openapi_schema_types_every_parameter_of_the_artist_endpoints():
    schema = Client().get("/api/v1/openapi.json").json()

    put = schema["paths"]["/api/v1/me/tracks/{public_id}/consent/{use}"]["put"]
    assert {p["name"] for p in put["parameters"]} == {
        "public_id",
        "use",
        "If-Match",
        "Idempotency-Key",
    }
    assert _param_schema(put, "use")["enum"] == USE_ORDER
    assert _param_schema(put, "public_id")["pattern"] == "^[A-Za-z0-9_-]{1,22}$"
    assert _param_schema(put, "Idempotency-Key")["pattern"] == "^[ -~]{1,255}$"
    assert _param_schema(put, "If-Match")["pattern"] == (
        '^(\\*|"[0-9]{1,10}"|[0-9]{1,10})$'
    )
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ConsentIn"}
    consent_in = schema["components"]["schemas"]["ConsentIn"]
    assert consent_in["properties"]["state"]["enum"] == ["granted", "denied", "default"]
    assert consent_in["required"] == ["state"]
    assert set(put["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "422",
    }

    listing = schema["paths"]["/api/v1/me/tracks"]["get"]
    assert [p["name"] for p in listing["parameters"]] == [
        "q",
        "license",
        "sort",
        "use",
        "state",
        "eligible",
        "cursor",
        "limit",
    ]
    assert not any(p["required"] for p in listing["parameters"])
    assert _param_schema(listing, "q")["maxLength"] == 200
    assert _param_schema(listing, "license")["enum"] == ["independent", "label"]
    assert _param_schema(listing, "sort")["enum"] == list(SORT_LABELS)
    assert _param_schema(listing, "use")["enum"] == USE_ORDER
    assert _param_schema(listing, "state")["enum"] == State.values
    assert _param_schema(listing, "eligible")["enum"] == ["yes", "no"]
    assert _param_schema(listing, "cursor")["maxLength"] == 400
    limit = _param_schema(listing, "limit")
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 200)
    assert set(listing["responses"]) == {"200", "400", "401", "403"}
