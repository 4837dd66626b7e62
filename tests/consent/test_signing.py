"""The site's signing key (``consent.signing``)."""

import base64
import hashlib
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from consent import signing


def test_the_key_id_is_the_rfc_7638_thumbprint_of_the_public_key():
    jwk = signing.public_jwk()

    required = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":")
    )
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(required.encode()).digest())
    assert jwk["kid"] == thumbprint.rstrip(b"=").decode() == signing.key_id()
    assert len(signing.b64url_decode(jwk["x"])) == 32


def test_a_signature_verifies_only_for_its_message_and_key():
    signature = signing.sign(b"message")
    jwk = signing.public_jwk()

    assert signing.verify(b"message", signature, jwk)
    assert not signing.verify(b"messagE", signature, jwk)
    assert not signing.verify(b"message", "not base64 !", jwk)
    other = {**jwk, "x": signing.b64url(bytes(32))}
    assert not signing.verify(b"message", signature, other)


def test_another_key_has_another_id(settings):
    before = signing.key_id()

    settings.REFRAIN_SIGNING_KEY = signing.new_signing_key()

    assert signing.key_id() != before


@pytest.mark.parametrize("value", ["", "short", signing.b64url(bytes(31))])
def test_a_malformed_key_stops_with_what_it_must_be(settings, value):
    settings.REFRAIN_SIGNING_KEY = value

    with pytest.raises(ImproperlyConfigured, match="32-byte seed in base64url"):
        signing.sign(b"message")
