"""Bulk changes: one use set on many of an artist's tracks.

Up to ``REFRAIN_BULK_INLINE_LIMIT`` tracks change in the request; more run as
a ``BulkJob`` in a worker, chunk by chunk, each chunk one transaction with
the job's cursor and counters.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from catalog.selectors import TrackFilters, track_list_for_owner
from config.doorbell import ring_after_commit
from consent.models import (
    BulkJob,
    Decision,
    LedgerEntry,
    Rule,
    Source,
    State,
    TrackConsent,
)
from consent.policy import Policy, is_eligible, policy_current
from consent.selectors import ConsentFilters
from consent.services.receipt_outbox import receipt_create, receipt_for_request
from consent.services.writes import (
    Change,
    ConsentError,
    LockedTrack,
    decision_of,
    defaults_for,
    lock_tracks,
    new_request_id,
    write_changes,
)
from consent.tasks import run_bulk_change as run_bulk_change_task
from consent.uses import USE_ORDER


@dataclass
class BulkOutcome:
    changed: int = 0
    unchanged: int = 0
    locked: int = 0
    entries: list[LedgerEntry] = field(default_factory=list)
    tracks: dict[int, LockedTrack] = field(default_factory=dict)


def consent_bulk_set_chunk(
    *,
    artist: User,
    track_ids: list[int],
    use: str,
    state: str,
    actor: User | None,
    source: str,
    request_id: str,
    policy: Policy | None = None,
) -> BulkOutcome:
    """Set one use on a chunk of the artist's tracks, in one transaction.

    Tracks of other artists are ignored (never touched, not counted); tracks
    whose use the policy prohibits are counted as ``locked`` and untouched.
    Idempotent: a track already in the state counts as ``unchanged``.
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    new_decision = decision_of(state)
    outcome = BulkOutcome()
    with transaction.atomic():
        policy = policy or policy_current()
        tracks = lock_tracks(track_ids, artist_id=artist.pk)
        current, eligible_now = {}, {}
        for track_id, decision, eligible in TrackConsent.objects.filter(
            track_id__in=tracks.keys(), use=use
        ).values_list("track_id", "decision", "eligible"):
            current[track_id] = decision
            eligible_now[track_id] = eligible
        default = defaults_for([artist.pk]).get((artist.pk, use))
        changes = []
        for track in tracks.values():
            rule = policy.rule(track.license_class, use)
            if rule == Rule.PROHIBITED:
                outcome.locked += 1
                continue
            if current.get(track.id, "") == new_decision:
                outcome.unchanged += 1
                continue
            changes.append(
                Change(
                    track_id=track.id,
                    public_id=track.public_id,
                    use=use,
                    old_decision=current.get(track.id, ""),
                    new_decision=new_decision,
                    old_eligible=eligible_now.get(track.id, False),
                    new_eligible=is_eligible(rule, new_decision, default),
                )
            )
        written = write_changes(
            changes=changes,
            tracks=tracks,
            actor_id=actor.pk if actor else None,
            source=source,
            request_id=request_id,
            policy_version=policy.number,
            now=timezone.now(),
        )
    outcome.changed = len(changes)
    outcome.entries = written.entries
    outcome.tracks = {tid: tracks[tid] for tid in written.versions}
    return outcome


def _bulk_queryset(job: BulkJob):
    if job.track_ids:
        return Track.objects.filter(artist_id=job.artist_id, pk__in=job.track_ids)
    filters = job.filters or {}
    queryset = track_list_for_owner(
        owner=job.artist,
        filters=TrackFilters(
            q=filters.get("q", ""), license=filters.get("license", "")
        ),
    )
    extra = ConsentFilters(
        use=filters.get("use", ""),
        state=filters.get("state", ""),
        eligible=filters.get("eligible", ""),
    ).as_q()
    if extra is not None:
        queryset = queryset.filter(extra)
    return queryset


def bulk_change_start(
    *,
    artist: User,
    use: str,
    state: str,
    actor: User | None,
    track_public_ids: list[str] | None = None,
    filters: dict | None = None,
) -> BulkJob:
    """Start a bulk change of one use on chosen tracks or on all that match.

    Only the artist's own tracks are considered. Up to
    ``REFRAIN_BULK_INLINE_LIMIT`` tracks are changed before this returns; more
    run in a Celery task (the job's counters show progress). Either way one
    receipt covers the whole change.
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    if state not in (Decision.GRANTED, Decision.DENIED, State.DEFAULT):
        raise ConsentError(f"“{state}” is not granted, denied or default.")
    job = BulkJob(
        artist=artist,
        use=use,
        state=state,
        request_id=f"bulk-{new_request_id()}",
        filters=filters or {},
    )
    if track_public_ids is not None:
        job.track_ids = list(
            Track.objects.filter(artist=artist, public_id__in=track_public_ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if not job.track_ids:
            raise ConsentError("Choose at least one of your tracks.")
    job.total = _bulk_queryset(job).order_by().count()
    if job.total == 0:
        raise ConsentError("No tracks match, so nothing was changed.")
    job.save()
    if job.total <= settings.REFRAIN_BULK_INLINE_LIMIT:
        bulk_job_run(job_id=job.pk, actor=actor)
        job.refresh_from_db()
    else:
        ring_after_commit(run_bulk_change_task, job.pk)
    return job


def bulk_job_run(*, job_id: int, actor: User | None = None, chunk: int = 2000) -> None:
    """Run a bulk job from its saved cursor to the end, then write its receipt.

    Each chunk is one transaction that changes the tracks and advances the
    job's cursor and counters together, so a crash and a redelivery neither
    skip nor double-count a track.
    """
    job = BulkJob.objects.select_related("artist").get(pk=job_id)
    if job.status == BulkJob.Status.DONE:
        return
    actor = actor or job.artist
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.RUNNING)
    # A run that starts from the beginning keeps what it wrote for the
    # receipt; a resumed one reads its ledger rows back instead.
    fresh = job.cursor == 0
    written: list = []
    written_tracks: dict[int, LockedTrack] = {}
    try:
        while True:
            if job.track_ids:
                # Explicit choice: the ids are in the job (sorted); the chunk
                # service still checks ownership.
                ids = [pk for pk in job.track_ids if pk > job.cursor][:chunk]
            else:
                ids = list(
                    _bulk_queryset(job)
                    .filter(pk__gt=job.cursor)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:chunk]
                )
            if not ids:
                break
            with transaction.atomic():
                outcome = consent_bulk_set_chunk(
                    artist=job.artist,
                    track_ids=ids,
                    use=job.use,
                    state=job.state,
                    actor=actor,
                    source=Source.BULK,
                    request_id=job.request_id,
                )
                job.cursor = ids[-1]
                job.processed += len(ids)
                job.changed += outcome.changed
                job.unchanged += outcome.unchanged
                job.locked += outcome.locked
                job.save(
                    update_fields=[
                        "cursor",
                        "processed",
                        "changed",
                        "unchanged",
                        "locked",
                    ]
                )
            if fresh:
                written.extend(outcome.entries)
                written_tracks.update(outcome.tracks)
        if fresh and written:
            with transaction.atomic():
                receipt = receipt_create(
                    artist_id=job.artist_id,
                    entries=written,
                    tracks=written_tracks,
                    method=Source.BULK,
                    policy=policy_current(),
                    now=timezone.now(),
                )
        else:
            receipt = receipt_for_request(
                artist=job.artist, request_id=job.request_id, method=Source.BULK
            )
        job.receipt = receipt
        job.status = BulkJob.Status.DONE
        job.finished_at = timezone.now()
        job.processed = max(job.processed, job.total)
        job.save(update_fields=["receipt", "status", "finished_at", "processed"])
    except Exception as error:
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJob.Status.FAILED, error=str(error)[:500]
        )
        raise
