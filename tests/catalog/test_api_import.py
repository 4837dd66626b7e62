import json

import pytest

from accounts.models import User
from catalog.models import Label, Track
from tests.api_errors import api_error
from tests.catalog.helpers import fresh_counts, kept_counts

pytestmark = pytest.mark.django_db

URL = "/api/v1/catalog/import"
TOKEN = "test-token"
CSV = """isrc,title,artist_email,license_class,label,duration_ms
US-RC1-76-07839,Night Drive,indie@example.com,independent,,215000
GBA1B2400001,Harbour Lights,signed@example.com,label,Northern Records,183000
USRC1760783,Too Short,indie@example.com,independent,,
"""
NDJSON = (
    "\n".join(
        json.dumps(row)
        for row in [
            {
                "isrc": "US-RC1-76-07839",
                "title": "Night Drive",
                "artist_email": "indie@example.com",
                "license_class": "independent",
                "label": None,
                "duration_ms": 215000,
            },
            {
                "isrc": "GBA1B2400001",
                "title": "Harbour Lights",
                "artist_email": "signed@example.com",
                "license_class": "label",
                "label": "Northern Records",
                "duration_ms": 183000,
            },
            {"isrc": "USRC1760783", "title": "Too Short"},
        ]
    )
    + "\n"
)
REPORT = {
    "created": 2,
    "updated": 0,
    "unchanged": 0,
    "rejected": 1,
    "invited": 2,
    "errors": [
        {"line": 4, "reason": "ISRC “USRC1760783” is not valid (CC-XXX-YY-NNNNN)"}
    ],
}


@pytest.fixture(autouse=True)
def platform_token(settings):
    settings.REFRAIN_PLATFORM_TOKENS = [TOKEN]


def _post(client, body, content_type="text/csv", token=TOKEN, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(URL, data=body, content_type=content_type, headers=headers)


def _nothing_written():
    assert Track.objects.count() == 0
    assert User.objects.count() == 0
    assert Label.objects.count() == 0
    assert kept_counts() == {}


def test_a_csv_body_is_imported_and_reported(client, invitation_queue):
    response = _post(client, CSV, content_type="text/csv; charset=utf-8")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == REPORT
    assert sorted(Track.objects.values_list("isrc", flat=True)) == [
        "GBA1B2400001",
        "USRC17607839",
    ]
    assert kept_counts() == fresh_counts()


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/jsonl"])
def test_a_json_lines_body_is_imported_and_reported(
    client, invitation_queue, content_type
):
    response = _post(client, NDJSON, content_type=content_type)

    # then the report is the CSV's, with JSON Lines' numbering (no header)
    assert response.status_code == 200
    assert response.json() == {
        **REPORT,
        "errors": [{**REPORT["errors"][0], "line": 3}],
    }


def test_sending_the_same_body_twice_changes_nothing(client, invitation_queue):
    _post(client, CSV)
    before = dict(Track.objects.values_list("isrc", "updated_at"))

    response = _post(client, CSV)

    assert response.json() == {
        **REPORT,
        "created": 0,
        "unchanged": 2,
        "invited": 0,
    }
    assert dict(Track.objects.values_list("isrc", "updated_at")) == before


def test_invitations_wait_for_the_commit(
    client, invitation_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _post(client, CSV)

    assert invitation_queue.sent == []
    for callback in callbacks:  # the commit
        callback()
    ((ids,),) = invitation_queue.sent
    assert sorted(ids) == sorted(User.objects.values_list("pk", flat=True))


@pytest.mark.parametrize(
    "token, headers",
    [
        ("wrong-token", {}),
        ("test-token-but-longer", {}),
        ("", {}),
        (None, {}),
        (None, {"Authorization": "Basic dGVzdC10b2tlbjo="}),
        (None, {"Authorization": TOKEN}),
    ],
    ids=["wrong", "longer", "empty", "missing", "basic", "no-scheme"],
)
def test_without_the_platform_token_nothing_is_written(
    client, invitation_queue, token, headers
):
    response = _post(client, CSV, token=token, **headers)

    assert response.status_code == 401
    assert response.json() == api_error(
        "unauthorized", "Send a valid key or token as Authorization: Bearer <key>."
    )
    _nothing_written()
    assert invitation_queue.sent == []


def test_no_token_is_accepted_when_none_is_configured(
    client, settings, invitation_queue
):
    settings.REFRAIN_PLATFORM_TOKENS = []

    response = _post(client, CSV)

    assert response.status_code == 401
    _nothing_written()


def test_an_empty_configured_token_accepts_nobody(client, settings, invitation_queue):
    settings.REFRAIN_PLATFORM_TOKENS = [""]

    response = _post(client, CSV, token="")

    assert response.status_code == 401
    _nothing_written()


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "application/octet-stream", ""],
)
def test_a_wrong_content_type_is_refused_and_nothing_written(
    client, invitation_queue, content_type
):
    response = _post(client, CSV, content_type=content_type)

    assert response.status_code == 400
    assert response.json() == api_error(
        "unsupported_media_type",
        "Send the file as the body with Content-Type text/csv or application/x-ndjson.",
    )
    _nothing_written()


def test_a_multipart_upload_is_refused_and_nothing_written(client, invitation_queue):
    response = client.post(
        URL,
        {"file": CSV},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == 400
    _nothing_written()


def test_a_body_that_is_not_utf8_is_reported_and_nothing_written(
    client, invitation_queue
):
    # given the whole file in UTF-16, as some spreadsheets save it
    body = CSV.encode("utf-16")

    response = _post(client, body)

    assert response.status_code == 200
    assert response.json() == {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "invited": 0,
        "errors": [
            {
                "line": 1,
                "reason": "the header is not UTF-8 text; save the file as UTF-8",
            }
        ],
    }
    _nothing_written()


def test_a_row_that_is_not_utf8_is_rejected_by_line(client, invitation_queue):
    body = CSV.replace("Night Drive", "Café").encode("latin-1")

    response = _post(client, body)

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"line": 2, "reason": "title is not valid UTF-8 text"},
        {"line": 4, "reason": "ISRC “USRC1760783” is not valid (CC-XXX-YY-NNNNN)"},
    ]
    assert list(Track.objects.values_list("isrc", flat=True)) == ["GBA1B2400001"]


def test_only_post_is_allowed(client):
    response = client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/v1/openapi.json").json()

    operation = schema["paths"][URL]["post"]
    assert operation["summary"] == (
        "Import tracks (CSV or JSON Lines body), upserting by ISRC"
    )
    assert operation["security"] == [{"ApiKeyAuth": []}, {"PlatformToken": []}]
    assert set(operation["responses"]) == {"200", "400", "401", "403", "429"}
    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"text/csv", "application/x-ndjson"}
    assert {kind["schema"]["type"] for kind in body["content"].values()} == {"string"}


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-ndjson"])
def test_the_schemas_example_bodies_import_cleanly(
    client, invitation_queue, content_type
):
    # given the example the OpenAPI schema shows for this content type
    schema = client.get("/api/v1/openapi.json").json()
    content = schema["paths"][URL]["post"]["requestBody"]["content"]
    example = content[content_type]["example"]

    # when it is sent as it stands
    response = _post(client, example, content_type=content_type)

    # then every row of it is imported
    report = response.json()
    assert response.status_code == 200
    assert (report["rejected"], report["errors"]) == (0, [])
    assert report["created"] == Track.objects.count() >= 1
