"""The public anchor list and signing key (``consent.views.transparency``)."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.models import LedgerAnchor
from consent.services import consent_set, ledger_anchor_create
from consent.views import transparency
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PUBLISHED = {
    "id",
    "created_at",
    "ledger_through",
    "tracks",
    "rows",
    "root",
    "algorithm",
    "key_id",
    "signature",
    "signed",
}


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def anchors(make_track):
    artist = UserFactory(email="private-artist@example.com")
    track = make_track(artist=artist, title="A private title")
    taken = []
    for state in ("granted", "denied", "granted"):
        consent_set(track=track, use="ai-training", state=state, actor=artist,
                    source="web")  # fmt: skip
        taken.append(ledger_anchor_create())
    return taken


def test_the_anchor_list_is_public_newest_first_and_holds_no_private_data(
    client, anchors
):
    response = client.get("/transparency/anchors/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert [anchor["id"] for anchor in body["anchors"]] == [
        anchor.pk for anchor in reversed(anchors)
    ]
    assert all(set(anchor) == PUBLISHED for anchor in body["anchors"])
    assert [(a["tracks"], a["rows"]) for a in body["anchors"]] == [
        (1, 3), (1, 2), (1, 1)
    ]  # fmt: skip
    assert body["next"] is None
    text = response.content.decode()
    for private in ("private-artist@example.com", "A private title"):
        assert private not in text


def test_each_anchor_verifies_with_the_published_key_alone(client, anchors):
    # given only what the two public documents say
    keys = client.get("/.well-known/refrain-keys.json").json()["keys"]
    published = client.get("/transparency/anchors/").json()["anchors"]

    # then the key is an Ed25519 JWK without any private member
    (key,) = keys
    assert set(key) == {"kid", "kty", "crv", "x", "alg", "use"}
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
        "OKP", "Ed25519", "EdDSA", "sig"
    )  # fmt: skip
    public = Ed25519PublicKey.from_public_bytes(_b64url(key["x"]))
    # and every anchor's signature verifies over its signed text, which holds
    # exactly its published values
    for anchor in published:
        assert anchor["key_id"] == key["kid"]
        public.verify(_b64url(anchor["signature"]), anchor["signed"].encode())
        signed = json.loads(anchor["signed"])
        assert {name: anchor[name] for name in signed if name != "schema"} == {
            name: value for name, value in signed.items() if name != "schema"
        }


def test_the_anchor_list_pages_back_with_before(client, anchors, monkeypatch):
    monkeypatch.setattr(transparency, "ANCHORS_PAGE", 2)

    first = client.get("/transparency/anchors/").json()
    older = client.get(first["next"]).json()

    assert [a["id"] for a in first["anchors"]] == [anchors[2].pk, anchors[1].pk]
    assert first["next"] == f"/transparency/anchors/?before={anchors[1].pk}"
    assert [a["id"] for a in older["anchors"]] == [anchors[0].pk]
    assert older["next"] is None


@pytest.mark.parametrize("before", ["abc", "²", "-1", "1.5", ""])
def test_a_malformed_before_is_a_400_that_reads_nothing(client, before):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/transparency/anchors/", {"before": before})

    assert response.status_code == 400
    assert response.json() == {"error": "before must be an anchor id"}
    assert [q["sql"] for q in queries if "ledgeranchor" in q["sql"]] == []


def test_the_public_documents_refuse_writes(client):
    assert client.post("/transparency/anchors/").status_code == 405
    assert client.post("/.well-known/refrain-keys.json").status_code == 405
    assert LedgerAnchor.objects.count() == 0
