"""Policy changes: preview, publish a new version, re-evaluate every track in
the background (resumable), and tell the affected artists once."""

from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from config.doorbell import ring_after_commit
from consent.models import (
    ArtistDefault,
    LedgerEntry,
    PolicyNotice,
    PolicyRule,
    PolicyVersion,
    Rule,
    Source,
    TrackConsent,
)
from consent.policy import policy_current
from consent.services.eligibility import eligibility_refresh
from consent.services.writes import ConsentError
from consent.tasks import apply_policy as apply_policy_task
from consent.tasks import notify_policy_change as notify_policy_change_task
from consent.uses import USE_ORDER
from consent.uses import USES as USES_BY_SLUG


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
        answer = "COALESCE(NULLIF(tc.decision, ''), d.decision)"  # NULL: silent
        if new_rule == Rule.PROHIBITED:
            new_expr = "FALSE"
        elif new_rule == Rule.OPT_IN:
            new_expr = f"COALESCE({answer} = 'granted', FALSE)"
        else:
            new_expr = f"COALESCE({answer} <> 'denied', TRUE)"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT "  # noqa: S608 - fixed fragments picked by rule; values are parameters
                f"SUM(CASE WHEN NOT tc.eligible AND {new_expr} THEN 1 ELSE 0 END), "
                f"SUM(CASE WHEN tc.eligible AND NOT {new_expr} THEN 1 ELSE 0 END) "
                f"FROM {table} tc LEFT JOIN {defaults_table} d "
                f"ON d.artist_id = tc.artist_id AND d.use = tc.use "
                f"WHERE tc.license_class = %s AND tc.use = %s",
                [license_class, use],
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
    batch (locks only that batch), saving the cursor after each, so memory is
    flat and a crashed worker resumes where it stopped. When done, marks the
    version applied and e-mails each affected artist one summary (after
    commit). Stops early, without marking, if a newer version exists (that
    one's run covers everything).
    """
    progress = PolicyApplyProgress()
    version = PolicyVersion.objects.get(pk=version_id)
    if version.applied_at is not None:
        progress.done = True
        return progress
    cursor = version.applied_through_track_id
    batches = 0
    while max_batches is None or batches < max_batches:
        if PolicyVersion.objects.filter(number__gt=version.number).exists():
            # Superseded: the newer version's run re-evaluates every track.
            PolicyVersion.objects.filter(pk=version.pk, applied_at__isnull=True).update(
                applied_at=timezone.now()
            )
            progress.done = True
            return progress
        ids = list(
            Track.objects.filter(pk__gt=cursor)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            outcome = eligibility_refresh(
                track_ids=ids,
                source=Source.POLICY,
                actor=version.created_by,
                note=f"policy v{version.number}: {version.reason[:150]}",
                request_id=f"policy-{version.number}",
            )
            PolicyVersion.objects.filter(pk=version.pk).update(
                applied_through_track_id=ids[-1]
            )
        cursor = ids[-1]
        progress.tracks += len(ids)
        progress.changed_rows += outcome.changed_rows
        batches += 1
    else:
        return progress
    with transaction.atomic():
        PolicyVersion.objects.filter(pk=version.pk).update(applied_at=timezone.now())
        ring_after_commit(notify_policy_change_task, version.pk)
    progress.done = True
    return progress


def policy_notify_artists(*, version_id: int) -> int:
    """E-mail each artist whose tracks changed under this version one summary.

    Idempotent per artist through ``PolicyNotice`` rows.
    """
    version = PolicyVersion.objects.get(pk=version_id)
    counts = (
        LedgerEntry.objects.filter(
            source=Source.POLICY, request_id=f"policy-{version.number}"
        )
        .values("track__artist_id", "use", "new_eligible")
        .order_by()
    )
    summary: dict[int, dict] = {}
    for row in counts.iterator(chunk_size=5000):
        per_artist = summary.setdefault(row["track__artist_id"], {})
        key = (row["use"], row["new_eligible"])
        per_artist[key] = per_artist.get(key, 0) + 1
    sent = 0
    for artist_id, changes in sorted(summary.items()):
        _, created = PolicyNotice.objects.get_or_create(
            version=version, artist_id=artist_id
        )
        if not created:
            continue
        artist = User.objects.get(pk=artist_id)
        lines = [
            {
                "use": USES_BY_SLUG[use].name,
                "count": count,
                "eligible": eligible,
            }
            for (use, eligible), count in sorted(changes.items())
        ]
        send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}"
            "The platform's AI policy changed",
            message=render_to_string(
                "consent/email/policy_change.txt",
                {
                    "user": artist,
                    "version": version,
                    "lines": lines,
                    "site": settings.REFRAIN_SITE_URL.rstrip("/"),
                },
            ),
            from_email=None,
            recipient_list=[artist.email],
        )
        sent += 1
    return sent


def policy_versions_unapplied() -> list[int]:
    return list(
        PolicyVersion.objects.filter(applied_at__isnull=True)
        .order_by("number")
        .values_list("pk", flat=True)
    )
