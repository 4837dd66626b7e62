"""schemathesis over the whole OpenAPI schema (/api/v1/openapi.json).

Every operation gets the examples, coverage and fuzzing phases, positive and
negative data, through Django's own WSGI application (no network, no server),
signed in as an artist with a personal access token, as a partner with a
partner key, as the platform's catalogue feed with a catalog key for the
import, and with no credentials for the public trainability answer. All of
schemathesis's default checks must pass: no 5xx, every status code and
content type documented, every body as its schema
says, valid data accepted and invalid data refused, authentication enforced.
"""

import json
import re
import uuid
from collections import Counter, defaultdict

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.core.parameters import ParameterLocation
from werkzeug.test import Client as WSGIClient

from accounts.services import token_create
from catalog.models import Track
from consent.partners import apikey_create, export_build, export_for, partner_create
from consent.services import trackconsent_create_missing
from consent.uses import USE_ORDER
from tests.factories import TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/v1/openapi.json"
PUT_CONSENT = "/api/v1/me/tracks/{public_id}/consent/{use}"
IMPORT = "/api/v1/catalog/import"
TRAINABILITY = "/api/v1/tracks/{identifier}/trainability"
ACKNOWLEDGEMENTS = "/api/v1/acknowledgements"
LIST = "/api/v1/me/tracks"
PLATFORM_TOKEN = "platform-token-for-schemathesis"
# Per operation and phase; with three operations the test takes ~20-40 s.
MAX_EXAMPLES = 40

# The import body is the file itself: send the generated text as it is.
schemathesis.serializer.alias(["text/csv", "application/x-ndjson"], "text/plain")

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {
            # Valid data may also meet the track's state: a stale If-Match is
            # a 412, and an Idempotency-Key the fuzzer already used for
            # another request is a 422 (that is what the key is for).
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422"]
            },
        },
        "operations": [
            {
                # The import's body is a file: any text is one it reads, and
                # it reports what it cannot import row by row (a 200). "Not a
                # string" cannot be sent as a body, so no body is "invalid".
                "include-path": IMPORT,
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
    }
)


@pytest.fixture(autouse=True)
def _own_cache_space(settings):
    """Search totals are cached per artist: a key space of this test's own."""
    cache = dict(settings.CACHES["default"])
    prefix = cache.get("KEY_PREFIX") or "refrain-test"
    cache["KEY_PREFIX"] = f"{prefix}:{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cache}


# Django's WSGI application, as gunicorn serves it.
APP = WSGIHandler()
# The artist's track that the schema's example points at (any other id is a
# 404), so that the fuzzer also reaches the consent change.
PUBLIC_ID = "fuzzedTrack0000001"


def _served_schema() -> schemathesis.BaseSchema:
    """The schema the app serves, read through its WSGI interface (nothing
    there touches the database), plus the track example above."""
    raw = json.loads(WSGIClient(APP).get(SCHEMA_URL).get_data())
    for parameter in raw["paths"][PUT_CONSENT]["put"]["parameters"]:
        if parameter["name"] == "public_id":
            parameter["example"] = PUBLIC_ID
    for parameter in raw["paths"][TRAINABILITY]["get"]["parameters"]:
        if parameter["name"] == "identifier":
            parameter["example"] = PUBLIC_ID
    ack = raw["paths"][ACKNOWLEDGEMENTS]["post"]["requestBody"]["content"]
    ack["application/json"]["example"] = {
        "track": PUBLIC_ID,
        "use": "genai-training",
        "consent_version": 0,
        "status": "removed",
        "dataset": "Fuzzing set v1",
    }
    loaded = schemathesis.openapi.from_dict(raw, config=CONFIG)
    loaded.app = APP
    return loaded


schema = _served_schema()
# Per operation: cases, checks run and status codes seen (printed with -s).
TALLY: dict[str, Counter] = defaultdict(Counter)


@schema.hook
def after_validate(context, case, response, results):
    count = TALLY[case.operation.label]
    count["cases"] += 1
    count["checks"] += len(results)
    count[f"status {response.status_code}"] += 1


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does, unhook the handler's "close old
    connections": it would close the connection holding the test's
    transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(settings) -> dict[str, dict[str, str]]:
    """Who calls: an artist with a token and two tracks (one label-licensed,
    whose uses the policy locks), a partner, the platform's catalogue feed,
    and anyone (no header). Rate limits above what the fuzzer sends."""
    settings.REFRAIN_PLATFORM_TOKENS = [PLATFORM_TOKEN]
    settings.REFRAIN_PUBLIC_RATE_LIMIT = 100_000
    partner = partner_create(name="Fuzzing AI")
    _, partner_key = apikey_create(
        name="fuzz", scope="partner", partner=partner, rate_limit=100_000
    )
    _, catalog_key = apikey_create(name="fuzz", scope="catalog", rate_limit=100_000)
    # A signed export of every use in both formats, so export.sig has one.
    for use in USE_ORDER:
        for fmt in ("jsonl", "csv"):
            export_build(snapshot_id=export_for(use=use, fmt=fmt)[1].pk)
    artist = UserFactory()
    tracks = [TrackFactory(artist=artist), TrackFactory(artist=artist, signed=True)]
    trackconsent_create_missing(track_ids=[track.pk for track in tracks])
    # public ids are random; this one is the schema's example
    Track.objects.filter(pk=tracks[0].pk).update(public_id=PUBLIC_ID)
    _, token = token_create(user=artist, name="schemathesis")
    return {
        "artist": {"Authorization": f"Bearer {token}"},
        "platform": {"Authorization": f"Bearer {catalog_key}"},
        "partner": {"Authorization": f"Bearer {partner_key}"},
        "anyone": {},
    }


@pytest.fixture
def tally() -> dict[str, Counter]:
    """This operation's figures; it must have reached a success, not only
    errors."""
    TALLY.clear()
    yield TALLY
    for label, count in TALLY.items():
        statuses = {k: v for k, v in sorted(count.items()) if k.startswith("status")}
        print(f"\n{label}: {count['cases']} cases, {count['checks']} checks")
        print(f"  {statuses}")
        assert any(key.startswith("status 2") for key in count), label


@schema.parametrize()
@hypothesis_settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_every_operation_answers_as_its_schema_says(case, credentials, tally):
    _as_a_client_sends_it(case)
    path = case.operation.path
    if path == IMPORT:
        who = "platform"
    elif path == TRAINABILITY:
        who = "anyone"
    elif path.startswith("/api/v1/me/"):
        who = "artist"
    else:
        who = "partner"
    if (
        who in ("partner", "platform")
        and case.meta is not None
        and case.meta.is_negative_at(ParameterLocation.HEADER)
    ):
        # The key is these operations' only header: a case whose headers
        # are "invalid" is one sent without it.
        who = "anyone"

    case.call_and_validate(headers=credentials[who])


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value):
    """``value`` without NUL characters and lone surrogates, which no text
    column can hold and the input guard refuses anywhere in a request (the
    schema's patterns say so; the generator does not always keep to them)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def _as_a_client_sends_it(case) -> None:
    """Rules that a schema cannot state or the generator does not keep:
    text is storable text; on the list, ``state`` is an answer about a
    ``use`` (alone, a 400 that asks for the use), and a ``cursor`` is only
    one that the list gave out (any other, a 400 that says so). A case
    generated as valid keeps to them as a client does; one generated as
    invalid is sent as it is."""
    if case.meta is None or case.meta.generation.mode.is_negative:
        return
    if isinstance(case.body, dict | list | str):
        case.body = _storable(case.body)
    if case.query:
        case.query = _storable(case.query)
    if case.operation.path != LIST or not case.query:
        return
    if case.query.get("state") and not case.query.get("use"):
        case.query["use"] = "genai-training"
    case.query.pop("cursor", None)
