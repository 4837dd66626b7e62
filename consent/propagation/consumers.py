"""Managing consumers: create, rotate the secret, pause, resume, replay, test.

Each a service in its own transaction, keyword-only. A secret is returned once
(to be shown once) and never displayed again.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from config.doorbell import ring_after_commit
from consent.models import Consumer, DeliveryAttempt
from consent.propagation import webhooks
from consent.propagation.delivery import webhook_send
from consent.propagation.payloads import EVENT_TEST, canonical
from consent.tasks import sweep_propagation as sweep_propagation_task
from consent.uses import USE_ORDER


class ConsumerError(Exception):
    """A consumer change that cannot be made; the message is for staff."""


@dataclass(frozen=True)
class WithSecret:
    consumer: Consumer
    secret: str  # shown once


def uses_parse(uses: list[str] | str) -> list[str]:
    """Use slugs in their canonical order; a clear error for unknown ones."""
    items = uses.split(",") if isinstance(uses, str) else list(uses)
    wanted = {item.strip() for item in items if item.strip()}
    unknown = sorted(wanted - set(USE_ORDER))
    if unknown:
        raise ConsumerError(
            f"Unknown use {', '.join(unknown)}: choose from {', '.join(USE_ORDER)}."
        )
    if not wanted:
        raise ConsumerError("Choose at least one use.")
    return [use for use in USE_ORDER if use in wanted]


def consumer_create(
    *,
    name: str,
    url: str,
    uses: list[str] | str,
    actor: User | None,
    check_address: bool = False,
) -> WithSecret:
    """A partner webhook, active at once, with a new secret (returned once).
    With ``check_address`` (the staff page and the command), a host that does
    not resolve or resolves to a refused address is an error now; every
    delivery checks it again anyway.

    It first receives the current state of every track (a backfill the beat
    sweep walks in chunks, as after a replay of everything), then every
    change as it happens: a partner that only heard of changes from now on
    would not know which of the tracks it already holds it may not use."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ConsumerError("Give the consumer a name of 1 to 100 characters.")
    problem = webhooks.url_problem(url or "")
    if problem:
        raise ConsumerError(problem)
    if len(url) > 500:
        raise ConsumerError("The URL is longer than 500 characters.")
    parsed = uses_parse(uses)
    if check_address:
        _check_address(url)
    secret = webhooks.secret_new()
    with transaction.atomic():
        if Consumer.objects.filter(name__iexact=name).exists():
            raise ConsumerError(f"A consumer named “{name}” exists already.")
        consumer = Consumer.objects.create(
            name=name,
            kind=Consumer.Kind.WEBHOOK,
            url=url,
            uses=parsed,
            secret=secret,
            created_by=actor,
            backfill_after=0,
        )
    return WithSecret(consumer, secret)


def consumer_move(*, consumer: Consumer, url: str) -> bool:
    """Point a webhook at another URL (checked as at creation), clearing a
    hold so the next delivery goes there at once; returns whether it moved."""
    if consumer.kind != Consumer.Kind.WEBHOOK:
        raise ConsumerError("The built-in registry has no URL.")
    problem = webhooks.url_problem(url or "") or (
        "The URL is longer than 500 characters." if len(url) > 500 else ""
    )
    if problem:
        raise ConsumerError(problem)
    if consumer.url == url:
        return False
    _check_address(url)
    Consumer.objects.filter(pk=consumer.pk).update(url=url, hold_until=None)
    consumer.url, consumer.hold_until = url, None
    return True


def _check_address(url: str) -> None:
    """Refuse at once a host that resolves to a private address (unless
    ``REFRAIN_WEBHOOK_ALLOW_PRIVATE``) or not at all: every delivery would
    fail on the same check, and staff should hear it now, not in the log."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        webhooks.resolve_public(parts.hostname, port)
    except webhooks.AddressRefused as refused:
        raise ConsumerError(str(refused)) from None


def consumer_rotate_secret(*, consumer: Consumer, actor: User | None) -> WithSecret:
    """A new secret; the old one keeps signing (both signatures are sent)
    for ``REFRAIN_WEBHOOK_SECRET_GRACE_HOURS``."""
    if consumer.kind != Consumer.Kind.WEBHOOK:
        raise ConsumerError("The built-in registry has no secret.")
    secret = webhooks.secret_new()
    grace = timedelta(hours=settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS)
    with transaction.atomic():
        locked = Consumer.objects.select_for_update().get(pk=consumer.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.secret = secret
        locked.save(
            update_fields=["secret", "previous_secret", "previous_secret_expires_at"]
        )
    return WithSecret(locked, secret)


def _set_status(consumer: Consumer, status: str, reason: str) -> Consumer:
    with transaction.atomic():
        locked = Consumer.objects.select_for_update().get(pk=consumer.pk)
        locked.status = status
        locked.status_reason = reason
        fields = ["status", "status_reason"]
        if status == Consumer.Status.ACTIVE:
            # A fresh start: no hold, no failure streak.
            locked.hold_until = None
            locked.consecutive_failures = 0
            locked.failing_since = None
            fields += ["hold_until", "consecutive_failures", "failing_since"]
            ring_after_commit(sweep_propagation_task)
        locked.save(update_fields=fields)
    return locked


def consumer_pause(*, consumer: Consumer, actor: User | None) -> Consumer:
    """Stop sending; changes keep being recorded and are sent on resume.

    The built-in registry is never paused: the platform's own pipelines would
    go on using eligibility an artist has withdrawn."""
    if consumer.kind == Consumer.Kind.REGISTRY:
        raise ConsumerError(
            "The built-in registry cannot be paused: the platform's own AI "
            "pipelines must hear of every change."
        )
    if consumer.status != Consumer.Status.ACTIVE:
        raise ConsumerError(
            f"{consumer.name} is {consumer.get_status_display().lower()} already: "
            "only an active consumer can be paused."
        )
    who = actor.email if actor else "a command"
    return _set_status(consumer, Consumer.Status.PAUSED, f"Paused by {who}.")


def consumer_resume(*, consumer: Consumer, actor: User | None) -> Consumer:
    """Send again (a paused or disabled consumer): everything it missed."""
    current = Consumer.objects.values_list("status", flat=True).get(pk=consumer.pk)
    if current == Consumer.Status.ACTIVE:
        raise ConsumerError(f"{consumer.name} is active already.")
    return _set_status(consumer, Consumer.Status.ACTIVE, "")


def consumer_disable(*, consumer: Consumer, reason: str) -> Consumer:
    return _set_status(consumer, Consumer.Status.DISABLED, reason)


def consumer_replay(
    *, consumer: Consumer, since: datetime | None, actor: User | None
) -> Consumer:
    """Send again the current state of every track changed or uploaded since
    ``since`` (every track when ``None``), whatever was delivered before.

    Walked in chunks by the propagation sweep (``backfill_after``); a replay
    asked while one runs starts over with the new date."""
    if since is not None and since > timezone.now():
        raise ConsumerError("The replay date is in the future.")
    with transaction.atomic():
        locked = Consumer.objects.select_for_update().get(pk=consumer.pk)
        locked.backfill_after = 0
        locked.backfill_since = since
        locked.save(update_fields=["backfill_after", "backfill_since"])
        ring_after_commit(sweep_propagation_task)
    return locked


def consumer_send_test(*, consumer: Consumer) -> DeliveryAttempt:
    """Send a signed test event now and log it; returns the logged attempt."""
    started = timezone.now()
    if consumer.kind != Consumer.Kind.WEBHOOK:
        raise ConsumerError("The built-in registry is not sent test events.")
    body = canonical(
        {
            "type": EVENT_TEST,
            "data": {"consumer": consumer.name, "sent_at": started.isoformat()},
        }
    )
    sent = webhook_send(consumer=consumer, body=body)
    return DeliveryAttempt.objects.create(
        consumer=consumer,
        started_at=started,
        duration_ms=sent.duration_ms,
        status_code=sent.status,
        outcome=DeliveryAttempt.Outcome.TEST,
        error=sent.error[:300] if not sent.ok else "",
        message_id=sent.message_id,
    )
