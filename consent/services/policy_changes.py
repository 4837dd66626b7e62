"""Policy changes: preview, publish a new version, re-evaluate every track in
the background (resumable), and tell the affected artists once."""

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from config.doorbell import ring, ring_after_commit
from consent.models import (
    ArtistDefault,
    PolicyNotice,
    PolicyRule,
    PolicyVersion,
    Rule,
    Source,
    TrackConsent,
)
from consent.policy import POLICY_WORDS_CACHE_KEY, eligible_sql, policy_current
from consent.policy_mail import policy_change_body, policy_changes_by_artist
from consent.services.eligibility import eligibility_refresh
from consent.services.writes import ConsentError
from consent.tasks import apply_policy as apply_policy_task
from consent.uses import USE_ORDER


def policy_preview(*, rules: dict[tuple[str, str], str]) -> dict[tuple[str, str], dict]:
    """How many tracks per (class, use) would change eligibility under ``rules``.

    Set-based counts over the stored rows (read-only). Returns, for each pair
    whose rule changes, ``{"old": rule, "new": rule, "gain": n, "lose": n}``.
    """
    current = policy_current()
    table = TrackConsent._meta.db_table
    defaults_table = ArtistDefault._meta.db_table
    preview = {}
    for (license_class, use), new_rule in sorted(rules.items()):
        old_rule = current.rules.get((license_class, use))
        if old_rule == new_rule:
            continue
        # The rule enters as a parameter (it is the caller's input), the
        # expression is the one ``eligible_sql`` derives from ``is_eligible``.
        new_expr = eligible_sql("new.rule", "tc.decision", "d.decision")
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH new(rule) AS (VALUES (%s)) SELECT "  # noqa: S608 - fixed fragments and the derived rule expression; values are parameters
                f"SUM(CASE WHEN NOT tc.eligible AND {new_expr} THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN tc.eligible AND NOT {new_expr} THEN 1 ELSE 0 END) "
                f"FROM {table} tc CROSS JOIN new LEFT JOIN {defaults_table} d "
                f"ON d.artist_id = tc.artist_id AND d.use = tc.use "
                f"WHERE tc.license_class = %s AND tc.use = %s",
                [new_rule, license_class, use],
            )
            gain, lose = cursor.fetchone()
        preview[(license_class, use)] = {
            "old": old_rule,
            "new": new_rule,
            "gain": int(gain or 0),
            "lose": int(lose or 0),
        }
    return preview


def policy_publish(
    *, rules: dict[tuple[str, str], str], actor: User, reason: str
) -> PolicyVersion:
    """Save ``rules`` as the next policy version and start re-evaluation.

    From the commit on, every consent change uses the new rules; the stored
    eligibility of existing tracks is brought in line in the background
    (``policy_apply``), batch by batch, each batch logged with source
    ``policy``. Every (class, use) pair must be given.
    """
    expected = {(c, u) for c in ("independent", "label") for u in USE_ORDER}
    if set(rules) != expected:
        raise ConsentError("Give a rule for every licence class and use.")
    if any(rule not in Rule.values for rule in rules.values()):
        raise ConsentError("Each rule must be opt_in, opt_out or prohibited.")
    if not reason.strip():
        raise ConsentError("Say why the policy changes: artists will read it.")
    with transaction.atomic():
        # Serialise publishers: the latest version row is locked while the next
        # number is taken.
        latest = PolicyVersion.objects.select_for_update().order_by("-number").first()
        version = PolicyVersion.objects.create(
            number=(latest.number if latest else 0) + 1,
            created_by=actor,
            reason=reason.strip(),
        )
        PolicyRule.objects.bulk_create(
            [
                PolicyRule(version=version, license_class=c, use=u, rule=rule)
                for (c, u), rule in sorted(rules.items())
            ]
        )
        ring_after_commit(apply_policy_task, version.pk)
        # The footer's promise follows the rules from the commit on.
        transaction.on_commit(lambda: cache.delete(POLICY_WORDS_CACHE_KEY))
    return version


@dataclass
class PolicyApplyProgress:
    tracks: int = 0
    changed_rows: int = 0
    done: bool = False


def policy_apply(
    *, version_id: int, batch_size: int = 5000, max_batches: int | None = None
) -> PolicyApplyProgress:
    """Re-evaluate every track against policy version ``version_id``.

    Walks tracks by id from the version's saved cursor, one transaction per
    batch (locks the version row, then only that batch's tracks), saving the
    cursor with the batch, so memory is flat and a crashed worker resumes
    where it stopped. A second run of the version (a redelivered message, the
    sweep ringing a version that is running) finds the version row locked
    and returns at once (``SKIP LOCKED``), so duplicates never pile up on the
    workers; on SQLite, whose writers queue, they take turns. When
    every track is done, e-mails each affected artist one summary
    (``policy_notify_artists``, at most once per artist) and only then marks
    the version applied, so a crash in between is finished by the next run.
    Stops early, marking the version applied without e-mails, if a newer
    version exists (that one's run covers every track).
    """
    progress = PolicyApplyProgress()
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            version = (
                PolicyVersion.objects.select_for_update(skip_locked=True)
                .filter(pk=version_id)
                .first()
            )
            if version is None:
                # Another run holds it (or the version is gone): leave it be.
                return progress
            if version.applied_at is not None:
                progress.done = True
                return progress
            if PolicyVersion.objects.filter(number__gt=version.number).exists():
                # Superseded: the newer version's run re-evaluates every track.
                version.applied_at = timezone.now()
                version.save(update_fields=["applied_at"])
                progress.done = True
                return progress
            ids = list(
                Track.objects.filter(pk__gt=version.applied_through_track_id)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            outcome = eligibility_refresh(
                track_ids=ids,
                source=Source.POLICY,
                actor=version.created_by,
                note=f"policy v{version.number}: {version.reason[:150]}",
                request_id=f"policy-{version.number}",
            )
            version.applied_through_track_id = ids[-1]
            version.save(update_fields=["applied_through_track_id"])
        progress.tracks += len(ids)
        progress.changed_rows += outcome.changed_rows
        batches += 1
    else:
        return progress
    policy_notify_artists(version_id=version_id)
    PolicyVersion.objects.filter(pk=version_id, applied_at__isnull=True).update(
        applied_at=timezone.now()
    )
    progress.done = True
    return progress


def policy_notify_artists(*, version_id: int) -> int:
    """E-mail each artist whose tracks changed under this version one summary:
    per use, how many of their tracks became or stopped being eligible, named
    (``consent.policy_mail``). Sent whatever the artist chose for receipt
    e-mails: it is not a receipt of their own change.

    Idempotent per artist through ``PolicyNotice`` rows (at most once each).
    """
    version = PolicyVersion.objects.get(pk=version_id)
    sent = 0
    for artist_id, (changes, pairs) in sorted(
        policy_changes_by_artist(version).items()
    ):
        _, created = PolicyNotice.objects.get_or_create(
            version=version, artist_id=artist_id
        )
        if not created:
            continue
        artist = User.objects.get(pk=artist_id)
        send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}"
            "The platform's AI policy changed",
            message=policy_change_body(
                version=version, artist=artist, changes=changes, pairs=pairs
            ),
            from_email=None,
            recipient_list=[artist.email],
        )
        sent += 1
    return sent


def policy_runs_resume() -> list[int]:
    """Beat sweep: ring the run of every version not applied yet (its message
    was lost, the broker refused it, or its worker died). A run resumes from
    the saved cursor, and a duplicate of a live run returns at once, so
    ringing a version that is running is harmless. Returns the ids rung."""
    rung = []
    for version_id in policy_versions_unapplied():
        if not ring(apply_policy_task, version_id):
            break  # the broker refuses: the next sweep tries again
        rung.append(version_id)
    return rung


def policy_versions_unapplied() -> list[int]:
    return list(
        PolicyVersion.objects.filter(applied_at__isnull=True)
        .order_by("number")
        .values_list("pk", flat=True)
    )
