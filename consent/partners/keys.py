"""Partners and their API keys, and the per-key rate limit.

A key is ``rfk_`` and 256 random bits; only its SHA-256 is stored, with its
first 12 characters (``prefix``) to show and to revoke it by. It is shown
once, when it is created.
"""

import hashlib
import math
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from consent.models import ApiKey, Consumer, Partner

KEY_PREFIX = "rfk_"  # noqa: S105 - the public prefix of every key, not a secret
SHOWN = 12  # characters of a key kept to show and name it
LAST_USED_RESOLUTION = timedelta(minutes=1)
WINDOW_SECONDS = 60
MAX_RATE_LIMIT = 100_000  # requests per minute a key may be given


class KeyError_(ValueError):
    """A key or partner that cannot be created as asked (the message says why)."""


def key_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def partner_create(
    *,
    name: str,
    consumer: Consumer | None = None,
    ack_days: int | None = None,
    actor: User | None = None,
) -> Partner:
    name = name.strip()
    if not name or len(name) > 100:
        raise KeyError_("A partner's name is 1 to 100 characters.")
    if Partner.objects.filter(name__iexact=name).exists():
        raise KeyError_(f"There is already a partner named “{name}”.")
    if consumer is not None and Partner.objects.filter(consumer=consumer).exists():
        raise KeyError_(f"“{consumer.name}” is already another partner's webhook.")
    days = Partner._meta.get_field("ack_days").default if ack_days is None else ack_days
    if not 1 <= days <= 365:
        raise KeyError_("The acknowledgement deadline is 1 to 365 days.")
    return Partner.objects.create(
        name=name, consumer=consumer, ack_days=days, created_by=actor
    )


def apikey_create(
    *,
    name: str,
    scope: str,
    partner: Partner | None = None,
    rate_limit: int | None = None,
    actor: User | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; return it with its plaintext (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise KeyError_("A key's name is 1 to 100 characters.")
    if scope not in ApiKey.Scope.values:
        raise KeyError_(f"The scope is one of {', '.join(ApiKey.Scope.values)}.")
    if (scope == ApiKey.Scope.PARTNER) != (partner is not None):
        raise KeyError_("A partner key belongs to a partner; a catalogue key to none.")
    limit = settings.REFRAIN_API_KEY_RATE_LIMIT if rate_limit is None else rate_limit
    if not 1 <= limit <= MAX_RATE_LIMIT:
        raise KeyError_(
            f"The rate limit is 1 to {MAX_RATE_LIMIT:,} requests per minute."
        )
    for _ in range(5):  # a prefix taken already (one in 2^47): draw again
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name,
                    scope=scope,
                    partner=partner,
                    prefix=plaintext[:SHOWN],
                    key_hash=key_digest(plaintext),
                    rate_limit=limit,
                    created_by=actor,
                )
        except IntegrityError:
            continue
        return key, plaintext
    raise RuntimeError("could not draw an unused key prefix")


def apikey_revoke(*, prefix: str) -> ApiKey:
    """Revoke the key whose prefix this is (refused from the next request).

    Raises ``ApiKey.DoesNotExist`` for an unknown prefix; revoking a revoked
    key changes nothing."""
    key = ApiKey.objects.get(prefix=prefix.strip()[:SHOWN])
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        key.refresh_from_db()
    return key


def apikey_authenticate(*, plaintext: str) -> tuple[ApiKey | None, str]:
    """The key and ``""``, or None and why it is refused (``unknown`` or
    ``revoked``). Records ``last_used_at`` at most once a minute."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 200:
        return None, "unknown"
    key = (
        ApiKey.objects.select_related("partner")
        .filter(key_hash=key_digest(plaintext))
        .first()
    )
    if key is None:
        return None, "unknown"
    if key.revoked_at is not None:
        return None, "revoked"
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key, ""


def rate_limit_wait(*, bucket: str, limit: int) -> int | None:
    """Count one request in ``bucket``'s current minute: None while it is
    within ``limit``, else the seconds until the next minute begins.

    A fixed window in the cache (``add`` then ``incr``, atomic in Redis and
    in the local-memory cache); a cache that is down lets requests through.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    name = f"ratelimit:{bucket}:{window}"
    try:
        if cache.add(name, 1, timeout=WINDOW_SECONDS + 5):
            count = 1
        else:
            count = cache.incr(name)
    except ValueError:  # expired between add and incr
        cache.add(name, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    except Exception:  # noqa: BLE001 - a cache outage must not stop the API
        return None
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
