"""Nothing is left half done: a crash in the middle of a multi-step write
either leaves nothing (one transaction) or is finished by the resume (the
beat sweep, or running the same thing again), which ends in exactly the state
a run without the crash gives: each track changed once in the ledger, every
chain intact.

A crash is injected by making a function that runs between two steps raise.
The state a crash-free run gives is taken first, inside a transaction that is
then rolled back, so both runs start from the same rows. The last test kills a
real worker process (SIGKILL) in the middle of a bulk job and lets a second
one finish it.
"""

import io
import sqlite3
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

import consent.services.bulk
import consent.services.defaults
import consent.services.eligibility
import consent.services.policy_changes
from catalog.audio import inspect_audio
from catalog.importer import CatalogRow
from catalog.models import Track
from catalog.services import stats_apply, tracks_insert_bulk
from config.doorbell import ring
from consent.models import (
    ArtistDefault,
    BulkJob,
    LedgerEntry,
    PolicyNotice,
    Receipt,
    TrackConsent,
)
from consent.policy import policy_current
from consent.services import (
    bulk_change_start,
    bulk_job_claim,
    bulk_job_run,
    bulk_jobs_resume,
    catalog_import,
    consent_set,
    defaults_set,
    policy_apply,
    policy_publish,
    policy_runs_resume,
    trackconsent_create_missing,
    tracks_upload,
)
from consent.services.bulk import UNSTARTED_GRACE
from consent.tasks import resume_bulk_jobs as resume_bulk_jobs_task
from tests.catalog.helpers import wav_bytes
from tests.consent.brokers import private_broker
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.drills import Workers, database_for_workers, wait_for
from tests.factories import TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


class Crash(Exception):
    """The injected failure: a process dying between two steps."""


def crash_on_call(monkeypatch, module, name: str, call: int) -> list[int]:
    """Make ``module.name`` raise ``Crash`` on its ``call``-th call (1-based)
    and run normally before and after (so the retry runs the real thing).
    Returns the list of calls made so far."""
    original = getattr(module, name)
    calls: list[int] = []

    def wrapper(*args, **kwargs):
        calls.append(len(calls) + 1)
        if len(calls) == call:
            raise Crash(f"{name} call {call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def state(*, request_ids: dict[str, str] | None = None):
    """Every row a consent write touches, without what differs between two
    equal runs (times, hashes, generated ids; ``request_ids`` renames)."""
    rename = request_ids or {}
    consents = sorted(
        TrackConsent.objects.values_list("track_id", "use", "decision", "eligible")
    )
    ledger = sorted(
        (*row[:-1], rename.get(row[-1], row[-1]))
        for row in LedgerEntry.objects.values_list(
            "track_id",
            "consent_version",
            "use",
            "old_state",
            "new_state",
            "old_eligible",
            "new_eligible",
            "actor_id",
            "source",
            "policy_version",
            "note",
            "request_id",
        )
    )
    versions = sorted(Track.objects.values_list("pk", "consent_version"))
    defaults = sorted(ArtistDefault.objects.values_list("artist_id", "use", "decision"))
    receipts = sorted(
        (
            receipt.artist_id,
            rename.get(receipt.payload["request_id"], receipt.payload["request_id"]),
            tuple(sorted(receipt.tracks.values_list("pk", flat=True))),
        )
        for receipt in Receipt.objects.all()
    )
    return {
        "consents": consents,
        "ledger": ledger,
        "versions": versions,
        "defaults": defaults,
        "receipts": receipts,
    }


def crash_free(run):
    """The state ``run()`` leaves, then rolled back (its e-mails forgotten)."""
    with transaction.atomic():
        result = run()
        expected = state()
        transaction.set_rollback(True)
    mail.outbox.clear()
    return expected, result


def assert_ledger_verifies():
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert out.getvalue().rstrip().endswith("breaks 0")


def assert_each_track_changed_once(request_id: str, track_ids: set[int], use: str):
    rows = list(
        LedgerEntry.objects.filter(request_id=request_id).values_list("track_id", "use")
    )
    assert sorted(rows) == sorted((track_id, use) for track_id in track_ids)


# --- defaults: one transaction --------------------------------------------------


@pytest.fixture
def artist_with_tracks(artist, make_track):
    """Five tracks on default, one with an explicit yes, one label track."""
    on_default = [make_track(artist=artist) for _ in range(5)]
    decided = make_track(artist=artist)
    consent_set(
        track=decided, use=TRAINING, state="granted", actor=artist, source="web"
    )
    make_track(artist=artist, signed=True)
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    return artist, on_default


@pytest.mark.parametrize(
    "apply_to_existing, crash_in, call",
    [
        (True, "eligibility_refresh", 2),  # the second batch of tracks
        (True, "receipt_for_request", 1),  # after every track, before the receipt
        (False, "consent_bulk_set_chunk", 2),  # the second batch of pinned tracks
        (False, "receipt_for_request", 1),
    ],
)
def test_a_crash_in_defaults_set_leaves_nothing_and_the_retry_completes_it(
    artist_with_tracks, monkeypatch, apply_to_existing, crash_in, call
):
    # given an artist's tracks, processed two at a time
    artist, _ = artist_with_tracks
    monkeypatch.setattr(consent.services.defaults, "CHUNK", 2)
    change = {
        "artist": artist,
        "defaults": {TRAINING: "granted", MINING: ""},
        "apply_to_existing": apply_to_existing,
        "actor": artist,
        "request_id": "defaults-1",
    }
    expected, outcome = crash_free(lambda: defaults_set(**change))
    assert outcome.tracks_following + outcome.tracks_kept > 2  # more than a batch
    before = state()

    # when the change crashes half-way
    crash_on_call(monkeypatch, consent.services.defaults, crash_in, call)
    with pytest.raises(Crash):
        defaults_set(**change)

    # then nothing of it was written: not the defaults, no track, no receipt
    assert state() == before

    # and the retry gives exactly what a run without the crash gives
    defaults_set(**change)
    assert state() == expected
    assert_ledger_verifies()


# --- new tracks: rows and their evaluation in one transaction ------------------


def test_create_missing_inserts_and_evaluates_in_one_transaction(artist, monkeypatch):
    # given tracks without consent rows, of an artist whose default for
    # mining is yes (so the new rows start eligible and are logged)
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    tracks = [TrackFactory(artist=artist) for _ in range(3)]
    ids = [track.pk for track in tracks]
    expected, created = crash_free(lambda: trackconsent_create_missing(track_ids=ids))
    assert created == 12

    # when the evaluation crashes after the insert
    crash_on_call(monkeypatch, consent.services.eligibility, "eligibility_refresh", 1)
    with pytest.raises(Crash):
        trackconsent_create_missing(track_ids=ids)

    # then no row was left on the wrong eligibility: none was inserted
    assert TrackConsent.objects.filter(track_id__in=ids).count() == 0
    assert LedgerEntry.objects.filter(track_id__in=ids).count() == 0

    # and the retry gives what one run gives
    assert trackconsent_create_missing(track_ids=ids) == 12
    assert state() == expected
    assert_ledger_verifies()


def test_an_upload_whose_evaluation_crashes_leaves_no_track(
    artist, monkeypatch, settings, tmp_path
):
    # given an artist whose default for mining is yes
    settings.MEDIA_ROOT = str(tmp_path)
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")

    def upload():
        file = SimpleUploadedFile("song.wav", wav_bytes(), "audio/wav")
        info = inspect_audio(file, name=file.name, size=file.size, max_bytes=10**6)
        return tracks_upload(artist=artist, uploads=[(file, info)])

    # when the new track's evaluation crashes
    crash_on_call(monkeypatch, consent.services.eligibility, "eligibility_refresh", 1)
    with pytest.raises(Crash):
        upload()

    # then there is no track, no consent row, no ledger row and no stored file
    assert Track.objects.filter(artist=artist).count() == 0
    assert TrackConsent.objects.filter(artist=artist).count() == 0
    assert LedgerEntry.objects.count() == 0
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == []

    # and uploading again gives the track on the artist's defaults, logged once
    [track] = upload()
    rows = dict(TrackConsent.objects.filter(track=track).values_list("use", "eligible"))
    assert rows == {GENAI: False, TRAINING: False, INFERENCE: False, MINING: True}
    assert list(LedgerEntry.objects.values_list("track_id", "use", "source")) == [
        (track.pk, MINING, "upload")
    ]
    assert_ledger_verifies()


def _import_rows(artist):
    return [
        CatalogRow(line, f"QZRFN24{line:05d}", f"Song {line}", artist.email,
                   "independent", "", 200000)
        for line in range(2, 9)
    ]  # fmt: skip


def _by_isrc():
    """The import's outcome keyed by ISRC (track ids differ between runs)."""
    isrc = dict(Track.objects.values_list("pk", "isrc"))
    consents = sorted(
        (isrc[track_id], use, decision, eligible)
        for track_id, use, decision, eligible in TrackConsent.objects.values_list(
            "track_id", "use", "decision", "eligible"
        )
    )
    ledger = sorted(
        (isrc[row[0]], *row[1:])
        for row in LedgerEntry.objects.values_list(
            "track_id", "consent_version", "use", "old_eligible", "new_eligible",
            "source", "note",
        )
    )  # fmt: skip
    return sorted(isrc.values()), consents, ledger


def test_an_import_batch_whose_evaluation_crashes_is_rolled_back_and_rerun(
    artist, monkeypatch
):
    # given an artist whose default for mining is yes, and seven new rows
    # imported two per batch
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    rows = _import_rows(artist)
    with transaction.atomic():
        catalog_import(rows=rows, batch_size=2)
        expected = _by_isrc()
        transaction.set_rollback(True)

    # when the second batch's evaluation crashes
    crash_on_call(monkeypatch, consent.services.eligibility, "eligibility_refresh", 2)
    with pytest.raises(Crash):
        catalog_import(rows=rows, batch_size=2)

    # then the first batch is whole (tracks, rows, ledger) and the second left
    # nothing
    isrcs, consents, ledger = _by_isrc()
    assert isrcs == [row.isrc for row in rows[:2]]
    assert len(consents) == 8
    assert [(entry[0], entry[2]) for entry in ledger] == [
        (rows[0].isrc, MINING),
        (rows[1].isrc, MINING),
    ]

    # and importing the file again ends as one import without the crash does
    report = catalog_import(rows=rows, batch_size=2)
    assert (report.created, report.unchanged) == (5, 2)
    assert _by_isrc() == expected
    assert_ledger_verifies()


# --- a policy run: resumed from its saved cursor -------------------------------


@pytest.fixture
def policy_catalogue(make_track):
    """Eight tracks of three artists: silent, granted and denied answers."""
    one, two, three = UserFactory(), UserFactory(), UserFactory()
    tracks = [make_track(artist=artist) for artist in (one, one, one, two, two)]
    consent_set(track=tracks[1], use=TRAINING, state="granted", actor=one, source="web")
    consent_set(track=tracks[2], use=GENAI, state="denied", actor=one, source="web")
    tracks += [make_track(artist=three), make_track(artist=three, signed=True)]
    tracks.append(make_track(artist=two))
    return one, two, three


def _publish(admin):
    return policy_publish(
        rules={
            **policy_current().rules,
            ("independent", GENAI): "opt_out",
            ("independent", TRAINING): "prohibited",
        },
        actor=admin,
        reason="Opt-out for generative AI; no other training",
    )


@pytest.mark.parametrize(
    "crash_in, call",
    [
        ("eligibility_refresh", 2),  # between the first and second batch
        ("policy_notify_artists", 1),  # every batch done, before it is marked
    ],
)
def test_a_policy_run_that_crashes_is_resumed_by_the_sweep(
    policy_catalogue, staff_user, task_queue, monkeypatch, crash_in, call
):
    # given a published policy change over eight tracks, run three at a time
    one, two, three = policy_catalogue
    version = _publish(staff_user)
    expected, _ = crash_free(lambda: policy_apply(version_id=version.pk, batch_size=3))
    mail.outbox.clear()

    # when the run crashes
    crash_on_call(monkeypatch, consent.services.policy_changes, crash_in, call)
    with pytest.raises(Crash):
        policy_apply(version_id=version.pk, batch_size=3)

    # then the version is not applied, and what is done is saved with the cursor
    version.refresh_from_db()
    assert version.applied_at is None
    assert version.applied_through_track_id > 0

    # when the beat sweep runs (a worker takes what it rings)
    task_queue.run_inline = True
    assert policy_runs_resume() == [version.pk]

    # then the run finished with the state of a run without the crash, each
    # (track, use) re-evaluated once, the artists told once each
    version.refresh_from_db()
    assert version.applied_at is not None
    assert state() == expected
    entries = LedgerEntry.objects.filter(request_id=f"policy-{version.number}")
    pairs = list(entries.values_list("track_id", "use"))
    assert len(pairs) == len(set(pairs)) > 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        {entry.track.artist.email for entry in entries}
    )
    assert PolicyNotice.objects.filter(version=version).count() == len(mail.outbox)
    assert_ledger_verifies()
    # and a further sweep has nothing left to do
    assert policy_runs_resume() == []


# --- bulk jobs: leases, resumed by the sweep -------------------------------------


@pytest.fixture
def bulk_tracks(artist, make_track):
    """Seven of the artist's tracks: five on default, one already yes for
    mining, one label track (the policy locks it)."""
    on_default = [make_track(artist=artist) for _ in range(5)]
    granted = make_track(artist=artist)
    consent_set(track=granted, use=MINING, state="granted", actor=artist, source="web")
    label = make_track(artist=artist, signed=True)
    return on_default, [*on_default, granted, label]


def _start(artist, tracks) -> BulkJob:
    return bulk_change_start(
        artist=artist,
        use=MINING,
        state="granted",
        actor=artist,
        track_public_ids=[track.public_id for track in tracks],
    )


def _counters(job: BulkJob) -> tuple:
    job.refresh_from_db()
    return (job.status, job.processed, job.changed, job.unchanged, job.locked)


@pytest.mark.parametrize(
    "crash_in, call",
    [
        ("consent_bulk_set_chunk", 3),  # between the second and third chunk
        ("receipt_create", 1),  # every chunk done, before the receipt
    ],
)
def test_a_bulk_job_that_crashes_is_resumed_by_the_sweep_to_the_same_end(
    artist, bulk_tracks, settings, task_queue, monkeypatch, crash_in, call
):
    # given a background job over seven tracks, two per chunk
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    settings.REFRAIN_BULK_CHUNK_SIZE = 2

    on_default, chosen = bulk_tracks

    def run_whole():
        job = _start(artist, chosen)
        bulk_job_run(job_id=job.pk)
        return job

    expected, clean = crash_free(run_whole)
    job = _start(artist, chosen)
    assert job.status == BulkJob.Status.QUEUED

    # when its worker crashes part-way
    crash_on_call(monkeypatch, consent.services.bulk, crash_in, call)
    with pytest.raises(Crash):
        bulk_job_run(job_id=job.pk)

    # then what it committed is counted, and its lease is given back
    job.refresh_from_db()
    assert job.status == BulkJob.Status.RUNNING
    assert job.attempts == 1
    assert job.lease_expires_at <= timezone.now()
    assert "Crash" in job.error
    committed = LedgerEntry.objects.filter(request_id=job.request_id).count()
    assert job.changed == committed > 0
    assert job.processed == (4 if crash_in == "consent_bulk_set_chunk" else 7)

    # when the beat sweep runs (a worker takes what it rings)
    task_queue.run_inline = True
    assert bulk_jobs_resume() == [job.pk]

    # then the job is done with the counters and rows of a run without the crash
    assert _counters(job) == ("done", 7, 5, 1, 1)
    assert (job.attempts, job.lease_expires_at, job.error) == (2, None, "")
    assert state(request_ids={job.request_id: clean.request_id}) == expected
    changed = {track.pk for track in on_default}
    assert_each_track_changed_once(job.request_id, changed, MINING)
    assert set(job.receipt.tracks.values_list("pk", flat=True)) == changed
    assert Receipt.objects.filter(payload__request_id=job.request_id).count() == 1
    assert_ledger_verifies()
    # and the sweep has nothing more to do
    assert bulk_jobs_resume() == []


def test_a_job_held_by_a_live_runner_is_left_alone_until_its_lease_runs_out(
    artist, bulk_tracks, settings, task_queue
):
    # given a background job that a worker has claimed
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    on_default, chosen = bulk_tracks
    job = _start(artist, chosen)
    assert bulk_job_claim(job_id=job.pk) == 1

    # when the sweep runs and a second copy of its message is delivered
    task_queue.run_inline = True
    assert bulk_jobs_resume() == []
    bulk_job_run(job_id=job.pk)

    # then nobody else ran it: one claim, nothing written
    assert _counters(job) == ("running", 0, 0, 0, 0)
    assert job.attempts == 1
    assert LedgerEntry.objects.filter(request_id=job.request_id).count() == 0
    assert bulk_job_claim(job_id=job.pk) is None

    # when its lease runs out (the worker died without a word)
    BulkJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    # then the sweep hands it on, and it finishes once
    assert bulk_jobs_resume() == [job.pk]
    assert _counters(job) == ("done", 7, 5, 1, 1)
    assert job.attempts == 2
    assert_each_track_changed_once(
        job.request_id, {track.pk for track in on_default}, MINING
    )


def test_a_runner_whose_job_was_taken_over_stops_before_its_next_chunk(
    artist, bulk_tracks, settings, task_queue, monkeypatch
):
    # given a background job run two tracks per chunk
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    settings.REFRAIN_BULK_CHUNK_SIZE = 2
    on_default, chosen = bulk_tracks
    job = _start(artist, chosen)
    original = consent.services.bulk._held_job
    calls = []

    def taken_over_after_the_first_chunk(job_id, attempt):
        calls.append(attempt)
        if len(calls) == 2:
            # meanwhile its lease ran out (a long pause) and another worker
            # claimed the job
            BulkJob.objects.filter(pk=job_id).update(
                lease_expires_at=timezone.now() - timedelta(seconds=1)
            )
            assert bulk_job_claim(job_id=job_id) == 2
        return original(job_id, attempt)

    monkeypatch.setattr(
        consent.services.bulk, "_held_job", taken_over_after_the_first_chunk
    )

    # when the first runner carries on after its first chunk
    bulk_job_run(job_id=job.pk)

    # then it stopped there: the job is the new holder's, one chunk written
    assert _counters(job) == ("running", 2, 2, 0, 0)
    assert job.attempts == 2
    assert job.receipt is None
    assert LedgerEntry.objects.filter(request_id=job.request_id).count() == 2

    # and when the new holder's lease runs out too, the sweep finishes the job
    monkeypatch.setattr(consent.services.bulk, "_held_job", original)
    BulkJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    task_queue.run_inline = True
    assert bulk_jobs_resume() == [job.pk]
    assert _counters(job) == ("done", 7, 5, 1, 1)
    assert_each_track_changed_once(
        job.request_id, {track.pk for track in on_default}, MINING
    )


def test_a_job_whose_message_was_lost_is_rung_again_after_a_few_seconds(
    artist, bulk_tracks, task_queue, settings
):
    # given a background job whose message never reached a worker
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    _, chosen = bulk_tracks
    job = _start(artist, chosen)
    task_queue.run_inline = True

    # then a sweep right away leaves it (its doorbell may still be on its way)
    assert bulk_jobs_resume() == []
    # and one a few seconds later rings it, and it runs
    later = timezone.now() + UNSTARTED_GRACE + timedelta(seconds=1)
    assert bulk_jobs_resume(now=later) == [job.pk]
    assert _counters(job) == ("done", 7, 5, 1, 1)
    assert task_queue.names() == ["run_bulk_change"]


def test_an_inline_bulk_change_that_stops_is_left_to_the_sweep_not_raised(
    artist, bulk_tracks, task_queue, monkeypatch, settings
):
    # given an inline-sized change, two tracks per chunk
    settings.REFRAIN_BULK_CHUNK_SIZE = 2
    on_default, chosen = bulk_tracks

    # when its second chunk crashes in the request
    crash_on_call(monkeypatch, consent.services.bulk, "consent_bulk_set_chunk", 2)
    job = _start(artist, chosen)

    # then the request gets the job back (no error): the first chunk is saved
    # and counted, the lease given back for the sweep
    assert _counters(job) == ("running", 2, 2, 0, 0)
    assert job.lease_expires_at <= timezone.now()

    # and the sweep finishes it
    task_queue.run_inline = True
    assert bulk_jobs_resume() == [job.pk]
    assert _counters(job) == ("done", 7, 5, 1, 1)
    assert_each_track_changed_once(
        job.request_id, {track.pk for track in on_default}, MINING
    )


def test_a_job_out_of_attempts_is_failed_with_what_it_committed(
    artist, bulk_tracks, task_queue, monkeypatch, settings
):
    # given a background job whose third chunk always fails
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    settings.REFRAIN_BULK_CHUNK_SIZE = 2
    settings.REFRAIN_BULK_MAX_ATTEMPTS = 3
    on_default, chosen = bulk_tracks
    job = _start(artist, chosen)
    original = consent.services.bulk.consent_bulk_set_chunk

    def third_chunk_fails(**kwargs):
        if kwargs["track_ids"][0] > sorted(t.pk for t in chosen)[3]:
            raise Crash("the third chunk")
        return original(**kwargs)

    monkeypatch.setattr(
        consent.services.bulk, "consent_bulk_set_chunk", third_chunk_fails
    )

    # when two attempts fail there, each handing the job back
    for attempt in (1, 2):
        with pytest.raises(Crash):
            bulk_job_run(job_id=job.pk)
        job.refresh_from_db()
        assert (job.status, job.attempts) == ("running", attempt)

    # then the third, the last allowed, fails the job when it stops, with the
    # receipt of what was committed
    with pytest.raises(Crash):
        bulk_job_run(job_id=job.pk)
    assert _counters(job) == ("failed", 4, 4, 0, 0)
    assert job.attempts == 3
    assert job.lease_expires_at is None
    assert job.finished_at is not None
    assert job.error.startswith(
        "Stopped after 3 attempts: 4 of 7 tracks were changed and saved before "
        "it stopped; 3 were not reached. Last error: Crash("
    )
    first_four = {t.pk for t in sorted(chosen, key=lambda t: t.pk)[:4]}
    assert_each_track_changed_once(job.request_id, first_four, MINING)
    assert set(job.receipt.tracks.values_list("pk", flat=True)) == first_four
    # and nothing runs it again
    assert bulk_job_claim(job_id=job.pk) is None
    assert bulk_jobs_resume() == []
    assert LedgerEntry.objects.filter(request_id=job.request_id).count() == 4


def test_a_job_whose_last_runner_died_is_failed_by_the_sweep(
    artist, bulk_tracks, task_queue, settings
):
    # given a job whose only allowed attempt was claimed by a worker that died
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    settings.REFRAIN_BULK_MAX_ATTEMPTS = 1
    _, chosen = bulk_tracks
    job = _start(artist, chosen)
    assert bulk_job_claim(job_id=job.pk) == 1
    BulkJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    # when the sweep finds it
    assert bulk_jobs_resume() == []

    # then it is failed, saying nothing was changed, and it rings nothing
    assert _counters(job) == ("failed", 0, 0, 0, 0)
    assert job.receipt is None
    assert job.error == (
        "Stopped after 1 attempt: 0 of 7 tracks were changed and saved before "
        "it stopped; 7 were not reached. Last error: none recorded"
    )
    assert task_queue.sent == []


# --- a real worker killed in the middle of a bulk job ------------------------------

KILL_TRACKS = 4000
KILL_CHUNK = 40  # a hundred chunks: time to see the cursor move and kill
KILL_LEASE = 2.0  # seconds; the sweep hands the job on soon after the kill


def _job_row(job_id: int, sqlite_file: Path | None) -> dict:
    """The job's progress as the workers wrote it."""
    columns = ("status", "processed", "attempts", "lease_expires_at")
    if sqlite_file is None:
        return BulkJob.objects.values(*columns).get(pk=job_id)
    with closing(sqlite3.connect(sqlite_file, timeout=20)) as db:
        found = db.execute(
            f"SELECT {', '.join(columns)} FROM consent_bulkjob WHERE id = ?",
            [job_id],
        ).fetchone()
    row = dict(zip(columns, found, strict=True))
    if row["lease_expires_at"]:  # stored in UTC, without the offset
        row["lease_expires_at"] = datetime.fromisoformat(
            row["lease_expires_at"]
        ).replace(tzinfo=UTC)
    return row


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_bulk_job_whose_worker_is_killed_finishes_on_another(tmp_path, settings):
    # given an artist with 4,000 tracks on default, and the test database where
    # a worker process can open it (a file copy on SQLite, whose test database
    # lives in this process's memory)
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    artist = UserFactory()
    now = timezone.now()
    tracks_insert_bulk(
        rows=[
            {
                "artist_id": artist.pk,
                "title": f"Track {number:04d}",
                "license_class": "independent",
                "uploaded_at": now,
                "updated_at": now,
            }
            for number in range(KILL_TRACKS)
        ]
    )
    stats_apply(deltas=Counter({(artist.pk, "independent"): KILL_TRACKS}))
    track_ids = set(Track.objects.filter(artist=artist).values_list("pk", flat=True))
    trackconsent_create_missing(track_ids=sorted(track_ids))
    with private_broker(tmp_path) as broker:
        # when a bulk change of all of them is started in the background (its
        # message waits in this test's own queue)
        job_id = bulk_change_start(
            artist=artist, use=MINING, state="granted", actor=artist, filters={}
        ).pk
        database, sqlite_file = database_for_workers(tmp_path)

        def job_row() -> dict:
            return _job_row(job_id, sqlite_file)

        workers = Workers(
            tmp_path,
            database,
            broker,
            {
                "REFRAIN_BULK_CHUNK_SIZE": KILL_CHUNK,
                "REFRAIN_BULK_LEASE_SECONDS": KILL_LEASE,
            },
        )
        try:
            # and its worker is killed once the cursor has moved
            first = workers.start()
            wait_for(lambda: job_row()["processed"] > 0, "progress", workers)
            workers.kill(first)
            at_kill = job_row()
            assert at_kill["status"] == "running"
            assert 0 < at_kill["processed"] < KILL_TRACKS, at_kill
            assert at_kill["attempts"] == 1

            # then, once its lease has run out, the sweep (run by a second
            # worker, rung every second as beat would) hands it on, and it ends
            workers.start()

            def done() -> bool:
                row = job_row()
                if row["status"] == "done":
                    return True
                if row["lease_expires_at"] < timezone.now():
                    ring(resume_bulk_jobs_task)
                    time.sleep(1)
                return False

            wait_for(done, "finished job", workers)
        finally:
            workers.stop_all()

    if sqlite_file is not None:
        with closing(sqlite3.connect(sqlite_file)) as copy:
            copy.backup(connection.connection)
    job = BulkJob.objects.get(pk=job_id)
    # done on the second attempt, every track counted once
    assert (job.status, job.attempts, job.lease_expires_at) == ("done", 2, None)
    assert (job.total, job.processed, job.changed) == (KILL_TRACKS,) * 3
    assert (job.unchanged, job.locked) == (0, 0)
    # each track changed exactly once under the job's request id
    assert_each_track_changed_once(job.request_id, track_ids, MINING)
    assert (
        TrackConsent.objects.filter(
            track_id__in=track_ids, use=MINING, decision="granted", eligible=True
        ).count()
        == KILL_TRACKS
    )
    # one receipt covers them all
    [receipt] = Receipt.objects.filter(payload__request_id=job.request_id)
    assert job.receipt == receipt
    assert receipt.tracks.count() == KILL_TRACKS
    assert_ledger_verifies()
