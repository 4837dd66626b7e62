"""Bulk changes: one use set on many of an artist's tracks.

Up to ``REFRAIN_BULK_INLINE_LIMIT`` tracks change in the request; more run as
a ``BulkJob`` in a worker, chunk by chunk, each chunk one transaction with
the job's cursor and counters.

Whoever runs a job holds its lease (``lease_expires_at``), taken by one
conditional UPDATE and extended with each chunk; the beat sweep
(``bulk_jobs_resume``) hands a job whose lease ran out, or that never
started, to another worker, so a dead worker or a lost message delays a job
by a lease at most. ``attempts`` counts the runs; when they are used up the
job is failed, with the receipt of what it committed.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from catalog.selectors import TrackFilters, track_list_for_owner
from config.doorbell import ring, ring_after_commit
from consent.models import (
    BulkJob,
    Decision,
    LedgerEntry,
    Source,
    State,
    TrackConsent,
)
from consent.policy import is_eligible, is_locked, policy_current
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

logger = logging.getLogger(__name__)

UNFINISHED = (BulkJob.Status.QUEUED, BulkJob.Status.RUNNING)
# A job queued this long with nobody holding it lost its message (or the
# broker refused it): the sweep rings it again.
UNSTARTED_GRACE = timedelta(seconds=5)


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
) -> BulkOutcome:
    """Set one use on a chunk of the artist's tracks, in one transaction.

    Tracks of other artists are ignored (never touched, not counted); tracks
    whose use the policy prohibits are counted as ``locked`` and untouched.
    Idempotent: a track already in the state counts as ``unchanged``. The
    policy is read after the tracks are locked, so a policy run that changed
    one of them first is seen (never overwritten with the older rules).
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    new_decision = decision_of(state)
    outcome = BulkOutcome()
    with transaction.atomic():
        tracks = lock_tracks(track_ids, artist_id=artist.pk)
        policy = policy_current()
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
            if is_locked(rule):
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
        ack=filters.get("ack", ""),
    ).as_q()
    if extra is not None:
        queryset = queryset.filter(extra)
    return queryset


def bulk_scope_count(*, artist: User, filters: dict) -> int:
    """How many of the artist's tracks a bulk change of every track that
    matches ``filters`` would consider (what its confirmation states)."""
    return _bulk_queryset(BulkJob(artist=artist, filters=filters)).order_by().count()


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

    Never reports a committed change as a failure: the job row commits
    first; a broker that refuses the task, or an inline run that stops
    half-way, leaves the job to the beat sweep (``bulk_jobs_resume``), and the
    job's status and counters say what is committed.
    """
    if use not in USE_ORDER:
        raise ConsentError(f"“{use}” is not a use.")
    if state not in (Decision.GRANTED, Decision.DENIED, State.DEFAULT):
        raise ConsentError(f"“{state}” is not granted, denied or default.")
    job = BulkJob(
        artist=artist,
        actor=actor,
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
        try:
            bulk_job_run(job_id=job.pk)
        except Exception:  # noqa: BLE001 - committed chunks stand; the sweep resumes
            logger.exception("inline bulk job %s stopped; left to the sweep", job.pk)
        job.refresh_from_db()
    else:
        ring_after_commit(run_bulk_change_task, job.pk)
    return job


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.REFRAIN_BULK_LEASE_SECONDS)


def bulk_job_claim(*, job_id: int) -> int | None:
    """Take the job's lease if nobody holds it; return the attempt number.

    One conditional UPDATE, so of two runners only one gets it: the job must
    be unfinished, its lease empty or run out, and its attempts not used up.
    The attempt number fences the holder: a runner whose lease ran out and
    was taken over finds another number on the job and stops. ``None`` when
    the job is finished, held by a live runner, or out of attempts (it is
    then failed, see ``bulk_job_give_up``).
    """
    now = timezone.now()
    claimed = BulkJob.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now),
        pk=job_id,
        status__in=UNFINISHED,
        attempts__lt=settings.REFRAIN_BULK_MAX_ATTEMPTS,
    ).update(
        status=BulkJob.Status.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=_lease_end(),
    )
    if not claimed:
        bulk_job_give_up(job_id=job_id)
        return None
    return BulkJob.objects.values_list("attempts", flat=True).get(pk=job_id)


def _held_job(job_id: int, attempt: int) -> BulkJob | None:
    """The job, locked, if this runner still holds it (inside a transaction)."""
    return (
        BulkJob.objects.select_for_update(of=("self",))
        .select_related("artist")
        .filter(pk=job_id, attempts=attempt, status=BulkJob.Status.RUNNING)
        .first()
    )


def _next_ids(job: BulkJob, chunk: int) -> list[int]:
    if job.track_ids:
        # Explicit choice: the ids are in the job (sorted); the chunk service
        # still checks ownership.
        return [pk for pk in job.track_ids if pk > job.cursor][:chunk]
    return list(
        _bulk_queryset(job)
        .filter(pk__gt=job.cursor)
        .order_by("pk")
        .values_list("pk", flat=True)[:chunk]
    )


def bulk_job_run(*, job_id: int, chunk: int | None = None) -> None:
    """Run a bulk job from its saved cursor to the end, then write its receipt.

    Claims the job's lease first (``bulk_job_claim``) and returns at once if
    another runner holds it or it is finished, so a duplicated or redelivered
    message is harmless. Each chunk is one transaction that locks the job,
    changes the tracks, advances the cursor and counters and extends the
    lease together, so a crash neither skips nor double-counts a track. The
    last transaction writes the one receipt of the whole job (from the rows
    this run wrote, or rebuilt from the ledger when it resumed a job) with
    ``done``. A run that fails gives its lease back for the sweep to retry.
    Every run writes as the job's actor (who started it), so a resumed job's
    ledger rows name the same person as its first chunks.
    """
    chunk = chunk or settings.REFRAIN_BULK_CHUNK_SIZE
    attempt = bulk_job_claim(job_id=job_id)
    if attempt is None:
        return
    job = BulkJob.objects.select_related("artist", "actor").get(pk=job_id)
    actor = job.actor
    # A run that starts from the beginning keeps what it wrote for the
    # receipt; a resumed one reads its ledger rows back instead.
    fresh = job.cursor == 0
    written: list = []
    written_tracks: dict[int, LockedTrack] = {}
    try:
        while True:
            with transaction.atomic():
                job = _held_job(job_id, attempt)
                if job is None:
                    return  # taken over by another runner after our lease ran out
                ids = _next_ids(job, chunk)
                if not ids:
                    _bulk_job_finish(
                        job, written=written if fresh else None, tracks=written_tracks
                    )
                    return
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
                job.lease_expires_at = _lease_end()
                job.save(
                    update_fields=[
                        "cursor",
                        "processed",
                        "changed",
                        "unchanged",
                        "locked",
                        "lease_expires_at",
                    ]
                )
            if fresh:
                written.extend(outcome.entries)
                written_tracks.update(outcome.tracks)
    except Exception as error:
        # Give the lease back at once: the sweep hands the job on (or fails
        # it when its attempts are used up) instead of waiting out the lease.
        BulkJob.objects.filter(
            pk=job_id, attempts=attempt, status=BulkJob.Status.RUNNING
        ).update(lease_expires_at=timezone.now(), error=repr(error)[:500])
        bulk_job_give_up(job_id=job_id)
        raise


def _bulk_job_finish(
    job: BulkJob, *, written: list | None, tracks: dict[int, LockedTrack]
) -> None:
    """Write the job's receipt and mark it done (caller holds the job locked)."""
    if written is None:
        receipt = receipt_for_request(
            artist=job.artist, request_id=job.request_id, method=Source.BULK
        )
    elif written:
        receipt = receipt_create(
            artist_id=job.artist_id,
            entries=written,
            tracks=tracks,
            method=Source.BULK,
            policy=policy_current(),
            now=timezone.now(),
        )
    else:
        receipt = None
    job.receipt = receipt
    job.status = BulkJob.Status.DONE
    job.finished_at = timezone.now()
    job.lease_expires_at = None
    job.processed = max(job.processed, job.total)
    job.error = ""
    job.save(
        update_fields=[
            "receipt",
            "status",
            "finished_at",
            "lease_expires_at",
            "processed",
            "error",
        ]
    )


def bulk_job_give_up(*, job_id: int) -> bool:
    """Fail a job whose attempts are used up and whose lease is free.

    One transaction: the receipt of what was committed before it stopped (one
    receipt for every track changed under the job's request id) and the
    ``failed`` status, whose message says how many tracks were changed.
    Returns whether the job was failed now.
    """
    with transaction.atomic():
        job = (
            BulkJob.objects.select_for_update(of=("self",))
            .select_related("artist")
            .filter(
                Q(lease_expires_at__isnull=True)
                | Q(lease_expires_at__lte=timezone.now()),
                pk=job_id,
                status__in=UNFINISHED,
                attempts__gte=settings.REFRAIN_BULK_MAX_ATTEMPTS,
            )
            .first()
        )
        if job is None:
            return False
        job.receipt = receipt_for_request(
            artist=job.artist, request_id=job.request_id, method=Source.BULK
        )
        job.status = BulkJob.Status.FAILED
        job.finished_at = timezone.now()
        job.lease_expires_at = None
        attempts = f"{job.attempts} attempt{'' if job.attempts == 1 else 's'}"
        job.error = (
            f"Stopped after {attempts}: {job.changed} of {job.total} tracks were "
            "changed and saved before it stopped; "
            f"{job.total - min(job.processed, job.total)} were not reached. "
            f"Last error: {job.error or 'none recorded'}"
        )
        job.save(
            update_fields=[
                "receipt",
                "status",
                "finished_at",
                "lease_expires_at",
                "error",
            ]
        )
    logger.error("bulk job %s failed: %s", job.pk, job.error)
    return True


def bulk_jobs_resume(*, now: datetime | None = None) -> list[int]:
    """Beat sweep: hand on every unfinished bulk job nobody is running.

    A job whose lease ran out (its runner died or gave up) or that never
    started (queued for a few seconds: its message was lost or never sent) is
    rung again through the doorbell; a job whose attempts are used up is
    failed instead. Safe to run twice at once: the runners claim the lease,
    so an extra message costs one UPDATE. Returns the ids rung.
    """
    now = now or timezone.now()
    stale = (
        BulkJob.objects.filter(status__in=UNFINISHED)
        .filter(
            Q(lease_expires_at__lte=now)
            | Q(lease_expires_at__isnull=True, created_at__lte=now - UNSTARTED_GRACE)
        )
        .order_by("created_at")
        .values_list("pk", "attempts")
    )
    rung = []
    for job_id, attempts in stale:
        if attempts >= settings.REFRAIN_BULK_MAX_ATTEMPTS:
            bulk_job_give_up(job_id=job_id)
        elif ring(run_bulk_change_task, job_id):
            rung.append(job_id)
        else:
            break  # the broker refuses: the next sweep tries again
    return rung
