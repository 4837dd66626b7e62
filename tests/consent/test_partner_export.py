"""Signed exports: built by a worker per consent state, served from the
file, signed with the published key; a changed byte fails the check."""

import csv
import hashlib
import io
import json

import pytest

from consent.models import ExportSnapshot, TrackConsent
from consent.partners import export_build, export_for, export_path
from consent.propagation import propagation_fan_out
from consent.services import consent_set
from consent.signing import b64url_decode, verify
from tests.consent.helpers import GENAI
from tests.consent.partner_helpers import get, partner_key

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/eligibility/export"


@pytest.fixture
def granted(make_track):
    """Three tracks, two granted for generative training, one label-signed."""
    tracks = [make_track(), make_track(), make_track(), make_track(signed=True)]
    for track in tracks[:2]:
        consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    propagation_fan_out()
    return tracks


def _download(client, key, **params):
    answer = get(client, EXPORT, key, **params)
    return answer, b"".join(
        answer.streaming_content
    ) if answer.status_code == 200 else b""


def _built(client, key, fmt="jsonl"):
    """Ask, let the worker build, ask again."""
    first = get(client, EXPORT, key, use=GENAI, format=fmt)
    assert first.status_code == 202, first.content
    assert first["Retry-After"] == "10"
    assert first.json()["status"] == "building"
    snapshot = ExportSnapshot.objects.get(format=fmt, status="building")
    export_build(snapshot_id=snapshot.pk)
    return _download(client, key, use=GENAI, format=fmt)


def test_an_export_lists_every_eligible_track_and_verifies(client, granted):
    _, key = partner_key()

    answer, body = _built(client, key)

    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-ndjson"
    rows = [json.loads(line) for line in body.decode().splitlines()]
    expected = set(
        TrackConsent.objects.filter(use=GENAI, eligible=True).values_list(
            "track__public_id", flat=True
        )
    )
    assert {row["id"] for row in rows} == expected == {t.public_id for t in granted[:2]}
    assert int(answer["X-Refrain-Rows"]) == 2

    # the signature verifies with the published key over the file's digest
    keys = client.get("/.well-known/refrain-keys.json").json()["keys"]
    jwk = next(k for k in keys if k["kid"] == answer["X-Refrain-Key-Id"])
    digest = hashlib.sha256(body).digest()
    assert answer["X-Refrain-SHA256"] == digest.hex()
    assert verify(digest, answer["X-Refrain-Signature"], jwk)
    # a changed byte fails the check
    changed = bytearray(body)
    changed[5] ^= 0x01
    assert not verify(
        hashlib.sha256(bytes(changed)).digest(), answer["X-Refrain-Signature"], jwk
    )

    # and the detached signature document says what, when, and signs it all
    sig = get(
        client,
        "/api/v1/eligibility/export.sig",
        key,
        use=GENAI,
        snapshot=answer["X-Refrain-Export-Id"],
    ).json()
    assert sig["sha256"] == digest.hex() and sig["rows"] == 2
    assert sig["changes_cursor"] == answer["X-Refrain-Changes-Cursor"]
    statement = {
        name: sig[name]
        for name in sig
        if name not in ("snapshot", "signature", "statement_signature", "public_keys")
    }
    canonical = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    assert verify(canonical, sig["statement_signature"], jwk)
    assert not verify(
        canonical.replace(b'"rows":2', b'"rows":3'), sig["statement_signature"], jwk
    )
    assert len(b64url_decode(sig["signature"])) == 64


def test_the_same_state_is_served_from_the_same_snapshot(client, granted):
    _, key = partner_key()
    answer, _ = _built(client, key)

    again, _ = _download(client, key, use=GENAI)

    assert again.status_code == 200
    assert again["X-Refrain-Export-Id"] == answer["X-Refrain-Export-Id"]
    assert ExportSnapshot.objects.count() == 1


def test_a_new_state_is_built_anew_while_the_last_one_is_served(
    client, granted, settings
):
    _, key = partner_key()
    first, _ = _built(client, key)
    # when a change lands and is fanned out (a new feed position)
    consent_set(track=granted[2], use=GENAI, state="granted", actor=None, source="web")
    propagation_fan_out()
    snapshot = ExportSnapshot.objects.get()
    ExportSnapshot.objects.filter(pk=snapshot.pk).update(
        as_of=snapshot.as_of.replace(year=snapshot.as_of.year - 1)
    )

    # then an old snapshot is not served; a new one is built
    answer = get(client, EXPORT, key, use=GENAI)
    assert answer.status_code == 202
    building = ExportSnapshot.objects.get(status="building")
    export_build(snapshot_id=building.pk)
    fresh, body = _download(client, key, use=GENAI)
    assert fresh["X-Refrain-Export-Id"] == str(building.pk)
    assert len(body.decode().splitlines()) == 3


def test_csv_has_a_header_and_one_row_per_track(client, granted):
    _, key = partner_key()

    answer, body = _built(client, key, fmt="csv")

    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert {row["id"] for row in rows} == {t.public_id for t in granted[:2]}
    assert set(rows[0]) == {"id", "isrc", "consent_version"}


@pytest.mark.parametrize(
    "params",
    [{"use": "everything"}, {"use": GENAI, "format": "xml"}, {}],
)
def test_a_bad_export_request_is_a_400(client, params):
    _, key = partner_key()

    answer = get(client, EXPORT, key, **params)

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_request"
    assert ExportSnapshot.objects.count() == 0


def test_export_for_rings_a_build_once_per_state(
    granted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        served, current = export_for(use=GENAI, fmt="jsonl")
        export_for(use=GENAI, fmt="jsonl")
    assert served is None and current.status == "building"
    assert len(callbacks) == 1


def test_a_snapshot_whose_file_is_gone_is_built_anew(client, granted):
    _, key = partner_key()
    answer, _ = _built(client, key)
    snapshot = ExportSnapshot.objects.get()
    export_path(snapshot).unlink()

    again = get(client, EXPORT, key, use=GENAI)

    assert again.status_code == 202
    rebuilt = ExportSnapshot.objects.get()
    assert rebuilt.pk != snapshot.pk and rebuilt.status == "building"
