"""The fuzz suite: hostile input never reaches a 500, and a rejected request
changes nothing.

Every URL pattern of the project (walked from the root resolver, each
placeholder filled with hostile values), every field of every form the pages
show, every query parameter of the lists and the API, the API's JSON bodies
and every column of the catalogue import get values from the hostile classes
in ``fuzz_support.CLASSES`` (NUL, lone surrogates, bytes that are not UTF-8,
very long and deeply nested values, wrong types, non-ASCII digits, extreme
numbers, SQL and HTML metacharacters, control characters, odd Unicode), as an
artist, as staff (with a second factor) and signed out. Each answer must be
below 500, and each 4xx must leave every product table (accounts, catalogue,
consent, the ledger) as it was (``tests.dbstate``).

PostgreSQL only: the NUL class exists only there (SQLite stores a NUL). The
input gate's own tests (test_input_guard.py) run on both stacks. Each test
prints its tally (``-s`` shows it) and, with ``REFRAIN_FUZZ_REPORT=<file>``,
appends it to that file.
"""

import json
import os
import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from django.test import Client
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import accounts.tasks
import config.tasks
import consent.tasks
from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS, token_create
from catalog.importer import COLUMNS
from consent.services import trackconsent_create_missing
from tests.config.fuzz_support import (
    CLASS_NAMES,
    CLASSES,
    HOSTILE_VALUES,
    Persona,
    Tally,
    as_text,
    forms_of,
    send,
    url_patterns,
    urlencoded,
    wire,
)
from tests.factories import StaffFactory, TrackFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

PLATFORM_TOKEN = "fuzz-platform-token"
GENAI = "genai-training"
# One draw of a value per class per test: the sweep below sends each value
# hundreds of times; a new run draws new values.
# No shrinking: one example is a whole sweep, and the tally names each failure.
SWEEP = hypothesis_settings(
    max_examples=1,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PERSONAS = ["anonymous", "artist", "staff"]
# The names the lists, the API and the admin read from the query string.
LIST_PARAMS = ["q", "license", "sort", "use", "state", "eligible", "cursor", "limit"]
ADMIN_PARAMS = ["q", "o", "p", "all", "e", "_changelist_filters", "_to_field"]
PAGE_PARAMS = ["page", "next"]


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """No task leaves the process: every task's ``delay`` records nothing."""
    for module in (accounts.tasks, config.tasks, consent.tasks):
        for name in dir(module):
            task = getattr(module, name)
            if hasattr(task, "delay") and hasattr(task, "run"):
                monkeypatch.setattr(task, "delay", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        "catalog.services.send_invitations_task.delay", lambda *args: None
    )


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.REFRAIN_PLATFORM_TOKENS = [PLATFORM_TOKEN]
    cache = dict(settings.CACHES["default"])
    cache["KEY_PREFIX"] = (
        f"{cache.get('KEY_PREFIX') or 'refrain-test'}:{uuid.uuid4().hex}"
    )
    settings.CACHES = {**settings.CACHES, "default": cache}


def _client() -> Client:
    # A 500 must come back as an answer to count, not as an exception.
    n = uuid.uuid4().int
    return Client(
        REMOTE_ADDR=f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}",
        raise_request_exception=False,
    )


@pytest.fixture
def world():
    """An artist with an independent and a label track, staff with a second
    factor in both staff groups, and one client per persona."""
    artist = UserFactory()
    tracks = [TrackFactory(artist=artist), TrackFactory(artist=artist, signed=True)]
    trackconsent_create_missing(track_ids=[track.pk for track in tracks])
    token, _ = token_create(user=artist, name="fuzz")
    staff = StaffFactory(is_superuser=True)
    for group_name in (GROUP_POLICY_ADMINS, GROUP_AUDITORS):
        group, _ = Group.objects.get_or_create(name=group_name)
        staff.groups.add(group)
    TOTP.activate(staff, generate_totp_secret())
    personas = {
        "anonymous": Persona("anonymous", _client()),
        "artist": Persona("artist", _client(), artist),
        "staff": Persona("staff", _client(), staff),
    }
    return {
        "personas": personas,
        "public_ids": [track.public_id for track in tracks],
        "token_id": str(token.pk),
    }


@pytest.fixture
def tally(request):
    tally = Tally()
    yield tally
    line = f"{request.node.name}: {tally.summary()}"
    print(f"\n{line}")
    report = os.environ.get("REFRAIN_FUZZ_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def _assert_clean(tally: Tally) -> None:
    assert tally.requests > 0
    assert tally.failures == [], "\n".join(tally.failures[:40])


def _own_value(name: str, world) -> str:
    """A placeholder's value that the artist owns, to reach past the lookup."""
    if name == "public_id":
        return world["public_ids"][0]
    if name in ("token_id", "pk"):
        return world["token_id"]
    if name == "use":
        return GENAI
    return "x"


# --- Every URL pattern -------------------------------------------------------------


@pytest.mark.parametrize("persona_name", PERSONAS)
@SWEEP
@given(values=HOSTILE_VALUES)
def test_every_url_pattern_with_hostile_placeholders_queries_and_bodies(
    world, tally, persona_name, values
):
    """Each placeholder of each pattern gets each class (spread over the three
    personas), with a hostile query string (GET) or form body (POST, PUT) of
    every name the lists and forms read; each pattern is also sent by each
    persona once with placeholders the artist owns, or as it is."""
    persona = world["personas"][persona_name]
    me = PERSONAS.index(persona_name)
    names = LIST_PARAMS + PAGE_PARAMS + ["use", "state", "set", "tracks", "scope"]

    def one(pattern, filler, class_name, method):
        path = pattern.fill({**filler, **pattern.choices})
        query = urlencoded({name: values[class_name] for name in names})
        send(
            tally,
            persona,
            method,
            f"{path}?{query}" if method == "GET" else path,
            body="" if method == "GET" else query,
            hostile_class=class_name,
            pattern=pattern.template,
        )

    for index, pattern in enumerate(url_patterns()):
        own_class = CLASS_NAMES[(index + me) % len(CLASS_NAMES)]
        owned = {name: _own_value(name, world) for name in pattern.names}
        one(pattern, owned, own_class, ("GET", "POST")[(index + me) % 2])
        for turn, class_name in enumerate(CLASS_NAMES):
            if pattern.names and (index + turn) % len(PERSONAS) == me:
                hostile = {name: wire(values[class_name]) for name in pattern.names}
                one(pattern, hostile, class_name, ("GET", "POST", "PUT")[turn % 3])
    _assert_clean(tally)


# --- Every form field of every form page ---------------------------------------------


def _form_pages(world) -> list[str]:
    pages = [p.template for p in url_patterns() if not p.names]
    own = world["public_ids"][0]
    return [*pages, f"/tracks/{own}/", "/audit/policy/", "/admin/catalog/track/add/"]


@pytest.mark.parametrize("persona_name", PERSONAS)
@SWEEP
@given(values=HOSTILE_VALUES)
def test_every_form_field_of_every_page_with_hostile_values(
    world, tally, persona_name, values
):
    """GET each page, then POST each form it shows once per field with that
    field hostile (the others as a person would send them) and with every
    field hostile (half the classes per form, the other half on the next)."""
    persona = world["personas"][persona_name]
    seen = set()
    for page in _form_pages(world):
        persona.ensure_signed_in()
        response = persona.client.get(page)
        if response.status_code != 200 or "html" not in response.get(
            "Content-Type", ""
        ):
            continue
        for form in forms_of(response.content.decode(), page):
            if form.method != "post" or form.key() in seen:
                continue
            seen.add(form.key())
            names = [*form.fields, *sorted(form.buttons)]
            for turn, name in enumerate(names):
                class_name = CLASS_NAMES[turn % len(CLASS_NAMES)]
                body = {**form.fields, name: values[class_name]}
                send(
                    tally,
                    persona,
                    "POST",
                    form.action,
                    body=urlencoded(body),
                    hostile_class=class_name,
                    pattern=page,
                )
            # Every field hostile at once: half the classes per form, in turn.
            for turn, class_name in enumerate(CLASS_NAMES):
                if (turn + len(seen)) % 2:
                    continue
                body = {name: values[class_name] for name in names}
                send(
                    tally,
                    persona,
                    "POST",
                    form.action,
                    body=urlencoded(body),
                    hostile_class=class_name,
                    pattern=page,
                )
    _assert_clean(tally)


# --- Every query parameter ---------------------------------------------------------


@SWEEP
@given(values=HOSTILE_VALUES)
def test_every_query_parameter_of_the_lists_and_the_api(world, tally, values):
    """The artist's list, the API list and the track page: each parameter with
    each class; the admin's lists: each parameter with a class in turn."""
    artist = world["personas"]["artist"]
    own = world["public_ids"][0]
    for endpoint in ("/tracks/", "/api/v1/me/tracks"):
        for name in LIST_PARAMS:
            for class_name in CLASS_NAMES:
                send(
                    tally,
                    artist,
                    "GET",
                    f"{endpoint}?{urlencoded({name: values[class_name]})}",
                    hostile_class=class_name,
                    pattern=endpoint,
                )
    for name in PAGE_PARAMS:
        for class_name in CLASS_NAMES:
            send(
                tally,
                artist,
                "GET",
                f"/tracks/{own}/?{urlencoded({name: values[class_name]})}",
                hostile_class=class_name,
                pattern="/tracks/{public_id}/",
            )
    staff = world["personas"]["staff"]
    changelists = [
        p.template
        for p in url_patterns()
        if p.template.endswith("/")
        and (p.template.startswith("/admin/") and p.template.count("/") == 4)
        and not p.names
    ]
    turn = 0
    for changelist in changelists:
        for name in ADMIN_PARAMS:
            class_name = CLASS_NAMES[turn % len(CLASS_NAMES)]
            turn += 1
            send(
                tally,
                staff,
                "GET",
                f"{changelist}?{urlencoded({name: values[class_name]})}",
                hostile_class=class_name,
                pattern=changelist,
            )
    _assert_clean(tally)


# --- The API's bodies and headers ----------------------------------------------------

_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    *(CLASSES[name] for name in ("nul", "lone-surrogate", "extreme-number")),
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_BODIES = st.one_of(
    _JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda state: json.dumps({"state": state}).encode(), _JSON_VALUES),
    st.integers(33, 3000).map(lambda n: (b'{"state":' * n) + b"1" + b"}" * n),
    CLASSES["invalid-utf8"],
    st.binary(max_size=64),
)
_HEADER_VALUES = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=300),
    st.sampled_from(['"1"', '"99999999999"', "*", '"²"', 'W/"1"']),
)


@hypothesis_settings(
    max_examples=80,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=_BODIES,
    use=st.one_of(st.just(GENAI), CLASSES["sql-html"], CLASSES["odd-unicode"]),
    if_match=_HEADER_VALUES,
    idempotency_key=_HEADER_VALUES,
    request_id=_HEADER_VALUES,
)
def test_the_api_consent_write_with_hostile_bodies_and_headers(
    world, tally, body, use, if_match, idempotency_key, request_id
):
    headers = {
        name: value
        for name, value in (
            ("If-Match", if_match),
            ("Idempotency-Key", idempotency_key),
            ("X-Request-ID", request_id),
        )
        if value is not None
    }
    own = world["public_ids"][0]
    send(
        tally,
        world["personas"]["artist"],
        "PUT",
        f"/api/v1/me/tracks/{own}/consent/{wire(use)}",
        body=body,
        content_type="application/json",
        headers=headers,
        hostile_class="api-body",
        pattern="/api/v1/me/tracks/{public_id}/consent/{use}",
    )
    _assert_clean(tally)


# --- Every import column -------------------------------------------------------------

_GOOD_ROW = {
    "isrc": "QZFUZ2500001",
    "title": "Fuzz",
    "artist_email": "fuzz@example.com",
    "license_class": "independent",
    "label": "",
    "duration_ms": "1000",
}


def _csv_line(row: dict) -> bytes:
    cells = []
    for column in COLUMNS:
        value = row[column]
        raw = (
            value
            if isinstance(value, bytes)
            else as_text(value).encode("utf-8", "surrogatepass")
        )
        cells.append(b'"' + raw.replace(b'"', b'""') + b'"')
    return b",".join(cells) + b"\n"


def _json_line(row: dict) -> bytes:
    out = {}
    for column in COLUMNS:
        value = row[column]
        out[column] = value if isinstance(value, list) else as_text(value)
    return json.dumps(out).encode() + b"\n"


def _nothing_imported(response) -> bool:
    """Every row of the file was refused: then nothing may be written."""
    if response.status_code != 200:
        return False
    report = response.json()
    return report["rejected"] > 0 and report["created"] + report["updated"] == 0


@SWEEP
@given(values=HOSTILE_VALUES)
def test_every_import_column_with_every_class(world, tally, values):
    """Each column of a CSV and a JSON Lines file with each class, sent to the
    HTTP import: a report, never a 500; a rejected row writes nothing."""
    platform = Persona("platform", _client())
    auth = {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
    for column in COLUMNS:
        for class_name in CLASS_NAMES:
            row = {**_GOOD_ROW, column: values[class_name]}
            header = ",".join(COLUMNS).encode() + b"\n"
            for content_type, data in (
                ("text/csv", header + _csv_line(row)),
                ("application/x-ndjson", _json_line(row)),
            ):
                send(
                    tally,
                    platform,
                    "POST",
                    "/api/v1/catalog/imports",
                    body=data,
                    content_type=content_type,
                    headers=auth,
                    hostile_class=class_name,
                    pattern=f"/api/v1/catalog/imports [{column}]",
                    rejected=_nothing_imported,
                )
    _assert_clean(tally)
