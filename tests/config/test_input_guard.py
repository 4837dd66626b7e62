"""The input gate (config.input_guard): unfit input is a 400 (or 413) that says
why, before any view or query runs, and the database is left as it was.

These run on both stacks: SQLite stores a NUL where PostgreSQL refuses it,
but neither can store a lone surrogate, and the answer must be the same."""

import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import token_create
from config.input_guard import MAX_JSON_DEPTH, json_problem, text_problem
from consent.models import LedgerEntry
from consent.services import trackconsent_create_missing
from tests.dbstate import database_state
from tests.factories import StaffFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

GENAI = "genai-training"


@pytest.fixture(autouse=True)
def _own_cache_space(settings):
    cache = dict(settings.CACHES["default"])
    prefix = cache.get("KEY_PREFIX") or "refrain-test"
    cache["KEY_PREFIX"] = f"{prefix}:{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cache}


@pytest.fixture
def artist():
    return UserFactory()


@pytest.fixture
def track(artist):
    track = TrackFactory(artist=artist)
    trackconsent_create_missing(track_ids=[track.pk])
    return track


@pytest.fixture
def signed_in(artist, client_ip):
    client = Client(REMOTE_ADDR=client_ip)
    client.force_login(artist)
    return client


@pytest.fixture
def api(artist, client_ip):
    _, plaintext = token_create(user=artist, name="fuzz")
    return Client(
        REMOTE_ADDR=client_ip, headers={"Authorization": f"Bearer {plaintext}"}
    )


def _bad_text(response, words: str) -> None:
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"Bad request: {words}\n"


def _bad_json(response, words: str, status: int = 400) -> None:
    assert response.status_code == status
    assert response.json() == {"detail": words, "message": words, "code": "bad_input"}


# --- The checks themselves ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Night Drive", None),
        ("Café ² ٣ 🎵", None),
        ("", None),
        ("a\x00b", "contains a NUL character"),
        ("\ud800", "is not valid UTF-8 text"),
        ("ok\udfffok", "is not valid UTF-8 text"),
    ],
)
def test_text_problem_names_what_cannot_be_stored(value, problem):
    assert text_problem(value) == problem


def test_json_problem_walks_keys_values_and_depth_without_recursion():
    deep: object = "leaf"
    for _ in range(50_000):  # far past Python's recursion limit
        deep = [deep]

    assert json_problem({"a": [1, {"b": "ok"}], "c": None}) is None
    assert json_problem({"a\x00": 1}) == "a string contains a NUL character"
    assert json_problem([[["\ud800"]]]) == "a string is not valid UTF-8 text"
    assert json_problem(deep) == f"nested deeper than {MAX_JSON_DEPTH} levels"
    nested_ok: object = 1
    for _ in range(MAX_JSON_DEPTH):
        nested_ok = [nested_ok]
    assert json_problem(nested_ok) is None
    assert json_problem([nested_ok]) == f"nested deeper than {MAX_JSON_DEPTH} levels"


# --- Pages ----------------------------------------------------------------------------


def test_a_nul_in_a_track_id_is_a_400_not_a_database_error(signed_in, track):
    before = database_state()

    response = signed_in.get("/tracks/%00/")

    _bad_text(response, "The address contains a NUL character.")
    assert database_state() == before


def test_a_path_that_is_not_utf8_reaches_no_query_as_such(signed_in, track):
    # \ud800 can only travel as the bytes ED A0 80, which are not UTF-8;
    # Django hands the view the percent-encoded text, harmless: a 404.
    before = database_state()

    response = signed_in.get("/tracks/%ED%A0%80/")

    assert response.status_code == 404
    assert database_state() == before


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("q=%00", "The query string contains a NUL character."),
        ("q=a%00b&sort=title", "The query string contains a NUL character."),
        ("q=%ED%A0%80", "The query string is not valid UTF-8."),
        ("q=%FF%FE", "The query string is not valid UTF-8."),
    ],
)
def test_a_bad_query_string_is_a_400(signed_in, track, query, words):
    response = signed_in.get(f"/tracks/?{query}")

    _bad_text(response, words)


def test_a_fine_query_string_with_other_scripts_and_digits_passes(signed_in, track):
    response = signed_in.get("/tracks/?q=%C3%A9%C2%B2%D9%A3&sort=title")

    assert response.status_code == 200


def test_the_admins_search_with_a_nul_is_a_400(client_ip):
    staff = StaffFactory(is_superuser=True)
    client = Client(REMOTE_ADDR=client_ip)
    client.force_login(staff)

    response = client.get("/admin/catalog/track/?q=%00")

    _bad_text(response, "The query string contains a NUL character.")


def test_a_nul_in_a_form_field_is_a_400_and_writes_nothing(signed_in, track):
    before = database_state()

    response = signed_in.post(
        f"/tracks/{track.public_id}/consent/", {"use": GENAI, "state": "granted\x00"}
    )

    _bad_text(response, "The form field “state” contains a NUL character.")
    assert database_state() == before
    assert LedgerEntry.objects.count() == 0


def test_a_form_body_that_is_not_utf8_is_a_400(signed_in, track):
    response = signed_in.post(
        f"/tracks/{track.public_id}/consent/",
        data=b"use=genai-training&state=%ED%A0%80",
        content_type="application/x-www-form-urlencoded",
    )

    _bad_text(response, "The form is not valid UTF-8.")


def test_a_nul_in_a_multipart_field_is_a_400(signed_in):
    # (Django already drops unprintable characters from uploaded file names.)
    before = database_state()

    response = signed_in.post(
        "/tracks/upload/",
        {
            "files": SimpleUploadedFile("a.wav", b"RIFF", "audio/wav"),
            "note": "a\x00b",
        },
    )

    _bad_text(response, "The form field “note” contains a NUL character.")
    assert database_state() == before


def test_a_nul_in_the_session_cookie_is_a_400(client_ip):
    client = Client(REMOTE_ADDR=client_ip)

    response = client.get("/tracks/", HTTP_COOKIE="sessionid=abcdefgh\x00ijklmnop")

    _bad_text(response, "The Cookie header contains a NUL character.")


# --- The API ----------------------------------------------------------------------


def _put(api, track, body: bytes, content_type="application/json"):
    return api.put(
        f"/api/v1/me/tracks/{track.public_id}/consent/{GENAI}",
        data=body,
        content_type=content_type,
    )


def test_a_deeply_nested_json_body_is_a_400_not_a_recursion_error(api, track):
    before = database_state()

    response = _put(api, track, b"[" * 100_000 + b"]" * 100_000)

    _bad_json(response, f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels.")
    assert database_state() == before


def test_a_json_body_nested_past_the_limit_is_a_400(api, track):
    body = {"state": "granted"}
    for _ in range(MAX_JSON_DEPTH):
        body = {"state": body}

    response = _put(api, track, json.dumps(body).encode())

    _bad_json(
        response,
        f"The JSON body is not accepted: nested deeper than {MAX_JSON_DEPTH} levels.",
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            b'{"state": "granted\\u0000"}',
            "The JSON body is not accepted: a string contains a NUL character.",
        ),
        (
            b'{"state": "\\ud800"}',
            "The JSON body is not accepted: a string is not valid UTF-8 text.",
        ),
        (b'{"state": "\xff"}', "The body is not valid UTF-8."),
    ],
)
def test_a_json_body_with_unstorable_text_is_a_400(api, track, body, words):
    response = _put(api, track, body)

    _bad_json(response, words)
    assert LedgerEntry.objects.count() == 0


def test_a_json_body_over_the_size_limit_is_a_413(api, track, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = _put(
        api, track, json.dumps({"state": "granted", "x": "a" * 2000}).encode()
    )

    _bad_json(response, "The request body is too large.", status=413)
    assert LedgerEntry.objects.count() == 0


def test_the_api_query_string_answers_in_json(api, track):
    response = api.get("/api/v1/me/tracks?q=%00")

    _bad_json(response, "The query string contains a NUL character.")


def test_a_nul_in_a_header_the_api_reads_is_a_400(api, track):
    response = api.put(
        f"/api/v1/me/tracks/{track.public_id}/consent/{GENAI}",
        data={"state": "granted"},
        content_type="application/json",
        headers={"Idempotency-Key": "key\x00"},
    )

    _bad_json(response, "The Idempotency-Key header contains a NUL character.")
    assert LedgerEntry.objects.count() == 0


def test_a_good_json_body_still_goes_through(api, track):
    response = _put(api, track, b'{"state": "granted"}')

    assert response.status_code == 200
    assert LedgerEntry.objects.count() == 1


def test_the_catalogue_import_body_is_not_read_by_the_gate(client, settings):
    # The import streams its body and reports bad rows by line itself.
    settings.REFRAIN_PLATFORM_TOKENS = ["t"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10

    response = client.post(
        "/api/v1/catalog/imports",
        data="isrc,title,artist_email,license_class,label,duration_ms\n"
        "X\x00,T,a@example.com,independent,,\n",
        content_type="text/csv",
        headers={"Authorization": "Bearer t"},
    )

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"line": 2, "reason": "isrc contains a NUL character"}
    ]
