"""The propagation outbox and its fan-out (``consent.propagation.outbox``).

Every write path records one ``PropagationChange`` per track it changed, in
the transaction of the change; the fan-out turns those rows into one due
``SyncState`` per consumer and track, forward only.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction
from django.utils import timezone

from catalog.audio import inspect_audio
from catalog.importer import CatalogRow
from catalog.models import LicenseClass, Track
from consent.models import ChangeFeedEntry, Consumer, PropagationChange, SyncState
from consent.policy import policy_current
from consent.propagation import propagation_fan_out
from consent.services import (
    consent_bulk_set_chunk,
    consent_set,
    defaults_set,
    policy_apply,
    policy_publish,
    tracks_upload,
)
from consent.services.decisions import _consent_set_locked, switch_arguments
from consent.services.switch_postgres import consent_switch
from tests.catalog.helpers import wav_bytes
from tests.consent.helpers import GENAI, MINING, TRAINING, track_reclassify
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def outbox() -> list[tuple[int, int]]:
    """(track id, version) of every outbox row, in id order."""
    return list(
        PropagationChange.objects.order_by("id").values_list(
            "track_id", "consent_version"
        )
    )


def outbox_empty() -> None:
    """Forget the rows the tracks' creation recorded (version 0 each)."""
    PropagationChange.objects.all().delete()


def webhook(name: str, status: str = Consumer.Status.ACTIVE) -> Consumer:
    return Consumer.objects.create(
        name=name,
        kind=Consumer.Kind.WEBHOOK,
        url=f"https://{name}.example/hook",
        uses=[TRAINING],
        status=status,
    )


def sync(consumer: Consumer, track: Track) -> SyncState:
    return SyncState.objects.get(consumer=consumer, track=track)


class _RollBack(Exception):
    pass


# --- every write path records one row per changed track ---------------------------


def test_consent_set_records_one_row_in_its_transaction(make_track):
    # given a track whose creation was recorded already
    track = make_track()
    outbox_empty()

    # when a change is made and its transaction rolled back
    with pytest.raises(_RollBack), transaction.atomic():
        consent_set(
            track=track, use=TRAINING, state="granted", actor=None, source="web"
        )
        # then inside that transaction the row is there
        assert outbox() == [(track.pk, 1)]
        raise _RollBack

    # and it went with the rollback
    assert outbox() == []

    # when the change is made for real, one row with the new version
    consent_set(track=track, use=TRAINING, state="granted", actor=None, source="web")
    assert outbox() == [(track.pk, 1)]


def test_the_same_state_again_records_nothing(make_track):
    track = make_track()
    consent_set(track=track, use=TRAINING, state="granted", actor=None, source="web")
    outbox_empty()

    result = consent_set(
        track=track, use=TRAINING, state="granted", actor=None, source="web"
    )

    assert result.changed is False
    assert outbox() == []


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["function", "statements"])
def test_both_switch_paths_record_the_row(make_track, path):
    # given a track at version 1 (on PostgreSQL consent_set runs the function;
    # the statements are SQLite's path, run here on the same database)
    track = make_track()
    consent_set(track=track, use=GENAI, state="denied", actor=None, source="web")
    outbox_empty()
    change = switch_arguments(
        track=track,
        owner=None,
        public_id=None,
        use=TRAINING,
        state="granted",
        actor=None,
        source="web",
        request_id="req-outbox",
        if_version=None,
    )

    # when one path makes the change
    if path == "function":
        consent_switch(**change)
    else:
        with transaction.atomic():
            _consent_set_locked(**change)

    # then it recorded one row: the track at version 2
    assert outbox() == [(track.pk, 2)]


@pytest.mark.postgres
def test_the_switch_function_records_nothing_when_rolled_back(make_track):
    track = make_track()
    outbox_empty()
    change = switch_arguments(
        track=track,
        owner=None,
        public_id=None,
        use=TRAINING,
        state="granted",
        actor=None,
        source="web",
        request_id="req-outbox",
        if_version=None,
    )

    with pytest.raises(_RollBack), transaction.atomic():
        consent_switch(**change)
        assert outbox() == [(track.pk, 1)]
        raise _RollBack

    assert outbox() == []
    assert Track.objects.get(pk=track.pk).consent_version == 0


def test_bulk_records_one_row_per_changed_track(make_track):
    # given three tracks of an artist, one already granted
    artist = UserFactory()
    first, second, third = (make_track(artist=artist) for _ in range(3))
    consent_set(track=second, use=TRAINING, state="granted", actor=None, source="web")
    outbox_empty()

    # when the artist grants the use on all three
    outcome = consent_bulk_set_chunk(
        artist=artist,
        track_ids=[first.pk, second.pk, third.pk],
        use=TRAINING,
        state="granted",
        actor=artist,
        source="web",
        request_id="bulk-outbox",
    )

    # then the two that changed have one row each, the unchanged one none
    assert (outcome.changed, outcome.unchanged) == (2, 1)
    assert sorted(outbox()) == [(first.pk, 1), (third.pk, 1)]

    # and running it again records nothing
    outbox_empty()
    again = consent_bulk_set_chunk(
        artist=artist,
        track_ids=[first.pk, second.pk, third.pk],
        use=TRAINING,
        state="granted",
        actor=artist,
        source="web",
        request_id="bulk-outbox-2",
    )
    assert again.changed == 0
    assert outbox() == []


def test_defaults_applied_to_existing_record_one_row_per_track(make_track):
    # given an artist with two tracks on default and one decided
    artist = UserFactory()
    on_default = [make_track(artist=artist) for _ in range(2)]
    decided = make_track(artist=artist)
    consent_set(track=decided, use=TRAINING, state="denied", actor=None, source="web")
    consent_set(track=decided, use=GENAI, state="denied", actor=None, source="web")
    outbox_empty()

    # when two defaults change and apply to the tracks still on default
    outcome = defaults_set(
        artist=artist,
        defaults={TRAINING: "granted", GENAI: "granted"},
        apply_to_existing=True,
        actor=artist,
    )

    # then each following track has one row (two uses changed: version 2),
    # the decided one none (``tracks_following`` counts track-uses)
    assert outcome.tracks_following == 4
    assert sorted(outbox()) == sorted((track.pk, 2) for track in on_default)

    # and the same defaults again record nothing
    outbox_empty()
    defaults_set(
        artist=artist,
        defaults={TRAINING: "granted", GENAI: "granted"},
        apply_to_existing=True,
        actor=artist,
    )
    assert outbox() == []


def test_a_policy_run_records_one_row_per_track_it_changes(make_track):
    # given two independent tracks on default and a label-licensed one
    independent = [make_track() for _ in range(2)]
    make_track(signed=True)
    outbox_empty()

    # when data mining becomes opt-out for independent tracks
    version = policy_publish(
        rules={**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): "opt_out"},
        actor=StaffFactory(is_superuser=True),
        reason="Opt-out for mining",
    )
    assert policy_apply(version_id=version.pk).done

    # then each independent track has one row at version 1, the label's none
    assert sorted(outbox()) == sorted((track.pk, 1) for track in independent)


def test_an_import_of_new_tracks_records_version_zero(settings):
    # given an artist and nothing recorded
    artist = UserFactory()
    outbox_empty()

    # when the catalogue import creates two tracks
    from consent.services import catalog_import

    report = catalog_import(
        rows=[
            CatalogRow(
                line=line,
                isrc=f"QZRFN260000{line}",
                title=f"Imported {line}",
                artist_email=artist.email,
                license_class=LicenseClass.INDEPENDENT,
                label="",
                duration_ms=200_000,
            )
            for line in (2, 3)
        ]
    )

    # then each new track has one row at version 0
    assert report.created == 2
    created = Track.objects.filter(artist=artist).order_by("pk")
    assert sorted(outbox()) == [(track.pk, 0) for track in created]


def _upload(artist):
    file = SimpleUploadedFile("song.wav", wav_bytes(), "audio/wav")
    info = inspect_audio(file, name=file.name, size=file.size, max_bytes=10**6)
    (track,) = tracks_upload(artist=artist, uploads=[(file, info)])
    return track


def test_an_upload_records_version_zero(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    artist = UserFactory()
    outbox_empty()

    track = _upload(artist)

    assert outbox() == [(track.pk, 0)]


def test_an_upload_that_starts_eligible_records_one_row(settings, tmp_path):
    # given an artist whose default for training is yes
    settings.MEDIA_ROOT = str(tmp_path)
    artist = UserFactory()
    defaults_set(
        artist=artist,
        defaults={TRAINING: "granted"},
        apply_to_existing=True,
        actor=None,
    )
    outbox_empty()

    # when a track is uploaded (the rules make it eligible: version 1)
    track = _upload(artist)

    # then one row records it, at the version it ended the transaction on
    assert track.consent_version == 0
    track.refresh_from_db()
    assert track.consent_version == 1
    assert outbox() == [(track.pk, 1)]


def test_a_licence_class_change_records_one_row(make_track):
    # given an independent track granted for two uses
    track = make_track()
    consent_set(track=track, use=TRAINING, state="granted", actor=None, source="web")
    consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    outbox_empty()

    # when the import moves it to a label (every use prohibited)
    assert track_reclassify(track, license_class=LicenseClass.LABEL, label="Big")

    # then one row at the version after both eligibilities fell
    assert track.consent_version == 4
    assert outbox() == [(track.pk, 4)]


# --- the fan-out ------------------------------------------------------------------


def test_fan_out_takes_the_highest_version_per_track_and_makes_rows_due(make_track):
    # given two consumers, one of them paused, and three versions of a track
    active, paused = webhook("active"), webhook("paused", Consumer.Status.PAUSED)
    track = make_track()
    for state in ("granted", "denied", "granted"):
        consent_set(track=track, use=TRAINING, state=state, actor=None, source="web")
    assert [v for _, v in outbox()] == [0, 1, 2, 3]

    # when the outbox is fanned out
    before = timezone.now()
    assert propagation_fan_out() == 4

    # then each consumer (paused too) wants version 3, due now, never sent
    for consumer in (active, paused):
        row = sync(consumer, track)
        assert (row.desired_version, row.delivered_version, row.attempts) == (3, -1, 0)
        assert before <= row.next_attempt_at <= timezone.now()
        assert row.pending_since is not None
    # and the outbox is empty
    assert outbox() == []
    assert propagation_fan_out() == 0


def test_a_disabled_consumer_still_gets_desired_versions(make_track):
    disabled = webhook("disabled", Consumer.Status.DISABLED)
    track = make_track()
    consent_set(track=track, use=TRAINING, state="granted", actor=None, source="web")

    propagation_fan_out()

    assert sync(disabled, track).desired_version == 1


def test_an_older_or_equal_version_does_not_make_a_delivered_row_due(make_track):
    # given a row delivered up to version 2
    consumer = webhook("partner")
    track = make_track()
    outbox_empty()
    SyncState.objects.create(
        consumer=consumer, track=track, desired_version=2, delivered_version=2
    )

    # when versions 1 and 2 arrive late
    PropagationChange.objects.create(track_id=track.pk, consent_version=1)
    PropagationChange.objects.create(track_id=track.pk, consent_version=2)
    assert propagation_fan_out() == 2

    # then nothing is due
    row = sync(consumer, track)
    assert (row.desired_version, row.delivered_version) == (2, 2)
    assert row.next_attempt_at is None
    assert row.pending_since is None

    # when version 3 arrives, it is due
    PropagationChange.objects.create(track_id=track.pk, consent_version=3)
    propagation_fan_out()
    row = sync(consumer, track)
    assert row.desired_version == 3
    assert row.next_attempt_at is not None
    assert row.pending_since is not None


def test_a_newer_version_revives_a_dead_letter(make_track):
    consumer = webhook("partner")
    track = make_track()
    outbox_empty()
    dead = timezone.now() - timedelta(hours=1)
    SyncState.objects.create(
        consumer=consumer,
        track=track,
        desired_version=1,
        delivered_version=-1,
        attempts=9,
        last_error="HTTP 503",
        dead_at=dead,
    )

    # an equal version leaves it dead
    PropagationChange.objects.create(track_id=track.pk, consent_version=1)
    propagation_fan_out()
    row = sync(consumer, track)
    assert (row.dead_at, row.attempts, row.next_attempt_at) == (dead, 9, None)

    # a newer one revives it: due now, attempts from zero
    PropagationChange.objects.create(track_id=track.pk, consent_version=2)
    propagation_fan_out()
    row = sync(consumer, track)
    assert row.dead_at is None
    assert row.attempts == 0
    assert row.desired_version == 2
    assert row.next_attempt_at <= timezone.now()


def test_a_retrying_row_keeps_its_later_attempt_time(make_track):
    consumer = webhook("partner")
    track = make_track()
    outbox_empty()
    later = timezone.now() + timedelta(minutes=30)
    SyncState.objects.create(
        consumer=consumer,
        track=track,
        desired_version=1,
        delivered_version=-1,
        attempts=3,
        next_attempt_at=later,
    )

    PropagationChange.objects.create(track_id=track.pk, consent_version=2)
    propagation_fan_out()

    row = sync(consumer, track)
    assert (row.desired_version, row.next_attempt_at, row.attempts) == (2, later, 3)


def test_a_deleted_tracks_row_is_dropped(make_track):
    consumer = webhook("partner")
    kept, deleted = make_track(), make_track()
    Track.objects.filter(pk=deleted.pk).delete()

    assert propagation_fan_out() == 2

    assert list(
        SyncState.objects.filter(consumer=consumer).values_list("track_id", flat=True)
    ) == [kept.pk]
    assert outbox() == []


# --- concurrent fan-outs on PostgreSQL --------------------------------------------


def _in_thread(work, errors: list) -> threading.Thread:
    def run():
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - asserted by the test
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wanted(consumer: Consumer) -> dict[int, int]:
    return dict(
        SyncState.objects.filter(consumer=consumer).values_list(
            "track_id", "desired_version"
        )
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_second_fan_out_skips_the_rows_another_holds(make_tracks):
    # given a consumer and 5 versions of each of 60 tracks, committed in
    # track order (the first 100 rows are the first 20 tracks')
    consumer = webhook("one")
    tracks = make_tracks(60)
    outbox_empty()
    PropagationChange.objects.bulk_create(
        PropagationChange(track_id=tracks[n // 5].pk, consent_version=n % 5 + 1)
        for n in range(300)
    )
    held, released = threading.Event(), threading.Event()
    taken: dict[str, int] = {}
    errors: list[BaseException] = []

    def first():
        # a fan-out whose transaction stays open (its rows locked)
        with transaction.atomic():
            taken["first"] = propagation_fan_out(limit=100)
            held.set()
            assert released.wait(30)

    def second():
        # the other connection fails rather than waits long for a lock
        assert held.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '20s'")
        taken["second"] = propagation_fan_out(limit=1000)

    threads = [_in_thread(first, errors), _in_thread(second, errors)]
    # when the second has taken and fanned out the rows the first does not
    # hold, it waits only for the change feed's lock, so that its feed rows
    # are numbered and committed after the first's (partners' cursors)
    assert held.wait(30)
    deadline = time.monotonic() + 15
    while not _waiting_for_an_advisory_lock():
        assert time.monotonic() < deadline, "the second fan-out never reached the feed"
        time.sleep(0.05)
    released.set()
    for thread in threads:
        thread.join(timeout=60)

    # then the second took the 200 rows the first did not hold, and together
    # they fanned out every track's highest version, the first's feed rows
    # numbered before the second's
    assert errors == []
    assert taken == {"first": 100, "second": 200}
    assert outbox() == []
    assert _wanted(consumer) == {track.pk: 5 for track in tracks}
    feed = list(
        ChangeFeedEntry.objects.order_by("seq").values_list("track_id", flat=True)
    )
    assert feed == [track.pk for track in tracks]


def _waiting_for_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_fan_outs_lose_nothing(make_tracks):
    # given two consumers and 300 changes over 60 tracks, interleaved
    consumers = [webhook("one"), webhook("two")]
    tracks = make_tracks(60)
    outbox_empty()
    PropagationChange.objects.bulk_create(
        PropagationChange(track_id=tracks[n % 60].pk, consent_version=n // 60 + 1)
        for n in range(300)
    )
    taken: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def fan_out():
        start.wait()
        while count := propagation_fan_out(limit=7):
            taken.append(count)

    threads = [_in_thread(fan_out, errors) for _ in range(2)]
    for thread in threads:
        thread.join(timeout=60)

    # then no error (no deadlock), every row taken exactly once, and each
    # consumer wants every track's highest version
    assert errors == []
    assert sum(taken) == 300
    assert outbox() == []
    for consumer in consumers:
        assert _wanted(consumer) == {track.pk: 5 for track in tracks}
