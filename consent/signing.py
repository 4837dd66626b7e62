"""The site's Ed25519 signing key: ledger anchors are signed with it, and
its public part is published at ``/.well-known/refrain-keys.json``.

``REFRAIN_SIGNING_KEY`` holds the private key as its 32-byte seed in
base64url (required in production; the embedded default generates one into
``var/``). The key id is the public key's JWK thumbprint (RFC 7638), so it
changes with the key and anyone holding the public key can compute it.
"""

import base64
import functools
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key() -> str:
    """A fresh private key in the form ``REFRAIN_SIGNING_KEY`` takes."""
    return b64url(Ed25519PrivateKey.generate().private_bytes_raw())


@functools.cache
def _private_key() -> Ed25519PrivateKey:
    try:
        seed = b64url_decode(settings.REFRAIN_SIGNING_KEY.strip())
        return Ed25519PrivateKey.from_private_bytes(seed)
    except ValueError as error:
        raise ImproperlyConfigured(
            "REFRAIN_SIGNING_KEY must be an Ed25519 private key: its 32-byte "
            "seed in base64url (python manage.py anchor_ledger --new-key prints one)"
        ) from error


@receiver(setting_changed)
def _key_forget(*, setting: str, **kwargs) -> None:
    if setting == "REFRAIN_SIGNING_KEY":
        _private_key.cache_clear()


def public_jwk() -> dict:
    """The site's public key as a JWK (RFC 8037: OKP, Ed25519) with its id."""
    raw = _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    thumbprint = json.dumps(members, sort_keys=True, separators=(",", ":"))
    kid = b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kid": kid, **members, "alg": "EdDSA", "use": "sig"}


def key_id() -> str:
    return public_jwk()["kid"]


def sign(message: bytes) -> str:
    """The Ed25519 signature of ``message``, base64url without padding."""
    return b64url(_private_key().sign(message))


def verify(message: bytes, signature: str, jwk: dict) -> bool:
    """Whether ``signature`` (base64url) is ``jwk``'s signature of ``message``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
        public.verify(b64url_decode(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
