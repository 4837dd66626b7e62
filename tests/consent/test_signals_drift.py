"""The nightly drift check (``consent.signals.drift``, ``manage.py
check_signals``, beat's ``consent.check_signals``): every public signal of
every track against the stored eligibility and the ledger, mismatches seeded
one at a time and caught, a clean catalogue passing, the run recorded and
shown on the audit page, in chunks with no query per track."""

from io import StringIO

import mutagen
import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.models import CheckRun, LedgerEntry, TrackConsent
from consent.propagation import propagation_fan_out
from consent.services import consent_set, tagged_copy_build
from consent.signals import comparisons, documents, drift, formats, site, tags
from consent.signals.drift import signals_check, signals_differences
from consent.tasks import check_signals
from tests.consent.audio_helpers import audio_track
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING

pytestmark = pytest.mark.django_db

SITE = "https://refrain.example"


@pytest.fixture(autouse=True)
def _settled(settings, tmp_path, monkeypatch):
    """A site URL, folders of this test's own, and no settling time: every
    track here changed a moment before the check, which would otherwise
    leave it out of the comparisons that wait for changes to settle."""
    settings.REFRAIN_SITE_URL = SITE
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.REFRAIN_TAGGED_AUDIO_DIR = str(tmp_path / "tagged")
    monkeypatch.setattr(drift, "SETTLE", drift.timedelta(0))
    monkeypatch.setattr(drift, "STALE_COPY_AFTER", drift.timedelta(0))


def _set(track, use: str, state: str) -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")


@pytest.fixture
def catalogue(make_track):
    """Five tracks with different answers (one with audio and its tagged
    copy), every change fanned out, the site documents served once (so they
    are cached)."""
    tracks = [make_track() for _ in range(3)]
    _set(tracks[0], GENAI, "granted")
    _set(tracks[1], INFERENCE, "granted")
    for use in (GENAI, TRAINING, INFERENCE, MINING):
        _set(tracks[2], use, "granted")
    with_audio = audio_track("mp3")
    _set(with_audio, TRAINING, "granted")
    tracks += [with_audio, make_track(signed=True)]
    propagation_fan_out()
    tagged_copy_build(track_id=with_audio.pk)
    for name in site.DOCUMENTS:
        site.site_document(name)
    for track in tracks:
        track.refresh_from_db()
    return tracks


def _run_command(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_signals", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_a_clean_catalogue_passes_and_the_run_is_recorded(catalogue):
    # when the check runs as a command
    code, out = _run_command()

    # then it found nothing, said so, exited 0 and recorded the run
    assert code == 0
    assert out.splitlines()[-1] == (
        "checked every public signal of 5 tracks (1 tagged copies read back): "
        "no mismatch"
    )
    run = CheckRun.objects.get()
    assert (run.kind, run.triggered_by, run.checked, run.problems) == (
        "signals", "command", 5, 0
    )  # fmt: skip
    assert run.details == [] and run.ok is True


def test_every_track_was_compared_with_the_site_documents(catalogue):
    report = signals_differences()

    assert report.problems == 0
    assert report.not_compared == 0
    assert report.tracks == 5 and report.copies == 1


def test_a_stale_cached_robots_txt_is_caught(catalogue):
    # given robots.txt as cached before a change, put back under the key of
    # the current change feed position (a cache that missed the change)
    old = site.site_document("robots.txt")
    _set(catalogue[1], GENAI, "granted")
    propagation_fan_out()
    version = site.site_documents_version()
    cache.set(site._key(version, "robots.txt"), old)

    # when the check runs
    code, out = _run_command()

    # then the stale copy is named, and only that
    assert code == 1
    report_line = [line for line in out.splitlines() if "robots.txt:" in line]
    assert len(report_line) == 1
    assert "differs from a fresh build" in report_line[0]
    assert f"Content-Usage: /t/{catalogue[1].public_id}/" in report_line[0]
    assert out.splitlines()[-1].endswith("1 mismatch (robots.txt 1)")
    assert CheckRun.objects.get().problems == 1


def test_a_tagged_copy_of_an_old_version_is_caught(catalogue):
    # given the audio track's copy, then a change the worker has not taken,
    # and the old copy put where the new version's copy goes
    track = catalogue[3]
    [old] = tags.copies(track.pk)
    _set(track, TRAINING, "denied")
    track.refresh_from_db()
    current = tags.copy_path(
        track_id=track.pk,
        version=track.consent_version,
        audio_name=track.audio_file.name,
    )
    current.write_bytes(old.path.read_bytes())

    # when the check runs
    report = signals_differences()

    # then the copy's version and answer are named, and the leftover too
    lines = [line for line in report.details if "tagged audio" in line]
    assert any(
        f"refrain.consent_version is '{old.version}'" in line
        and f"give '{track.consent_version}'" in line
        for line in lines
    )
    assert any("cawg.ai_training is 'allowed'" in line for line in lines)
    assert any(f"a copy of version {old.version} is left" in line for line in lines)
    assert set(report.counts) == {"tags"}


def test_a_copy_not_rebuilt_after_a_change_is_caught_once_it_had_time(
    catalogue, monkeypatch
):
    # given a change whose copy the worker never wrote
    track = catalogue[3]
    _set(track, INFERENCE, "granted")
    propagation_fan_out()
    track.refresh_from_db()

    # when the check runs within the time the worker has, then after
    monkeypatch.setattr(drift, "STALE_COPY_AFTER", drift.timedelta(hours=1))
    early = signals_differences()
    monkeypatch.setattr(drift, "STALE_COPY_AFTER", drift.timedelta(0))
    late = signals_differences()

    # then only the late one names it
    assert early.problems == 0
    assert late.details == [
        f"track {track.public_id} tagged audio: a copy of version "
        f"{track.consent_version - 1} is left and none of it; the track is at "
        f"version {track.consent_version}"
    ]


def test_tags_edited_to_say_the_wrong_thing_are_caught(catalogue):
    # given the audio track's copy, its tags then edited to allow generative
    # training, which the track does not
    track = catalogue[3]
    [copy] = tags.copies(track.pk)
    edited = mutagen.File(copy.path)
    edited.tags.delall("TXXX:cawg.ai_generative_training")
    edited.tags.add(
        mutagen.id3.TXXX(
            encoding=3, desc="cawg.ai_generative_training", text=["allowed"]
        )
    )
    edited.save()

    report = signals_differences()

    assert report.details == [
        f"track {track.public_id} tagged audio v{track.consent_version}: "
        "cawg.ai_generative_training is 'allowed', the stored eligibility and "
        "version give 'notAllowed'"
    ]


def test_stored_eligibility_unlike_the_ledgers_last_row_is_caught(catalogue):
    # given a consent row changed behind the services' back: the track now
    # says it permits data mining, which its ledger never recorded
    track = catalogue[0]
    TrackConsent.objects.filter(track=track, use=MINING).update(eligible=True)
    assert not LedgerEntry.objects.filter(track=track, use=MINING).exists()

    code, out = _run_command()

    assert code == 1
    assert (
        f"track {track.public_id} stored eligibility: data-mining stored yes, ledger no"
    ) in out.splitlines()
    assert out.splitlines()[-1].endswith("(stored 1)")


def test_an_encoder_that_drifts_is_caught_by_reading_the_format_back(
    catalogue, monkeypatch
):
    # given a release whose Content-Usage encoder says yes to everything
    monkeypatch.setattr(
        formats, "content_usage", lambda permitted: "train-ai=y, search=y"
    )

    report = signals_differences()

    # then every track that refuses generative training is named, on its
    # page (the site documents' copy was built before and agrees with a
    # fresh build of the drifted encoder, which the lines per track catch)
    refusing = [t for t in catalogue if not t.consents.get(use=GENAI).eligible]
    page = [line for line in report.details if "page Content-Usage" in line]
    assert sorted(page) == sorted(
        f"track {t.public_id} page Content-Usage: train-ai says yes, the stored "
        "eligibility gives no (genai-training)"
        for t in refusing
    )
    assert report.counts["page"] == len(refusing)


def test_a_track_left_out_of_the_site_documents_is_caught(catalogue, monkeypatch):
    # given site documents built without a track that permits something
    left_out = catalogue[1]
    built = documents.site_documents(
        [
            (t.public_id, {c.use: c.eligible for c in t.consents.all()})
            for t in catalogue
            if t != left_out
        ],
        site=SITE,
        max_bytes=django_settings.REFRAIN_SIGNALS_MAX_BYTES,
    )
    monkeypatch.setattr(comparisons, "site_documents_build", lambda: built)
    cache.clear()

    report = signals_differences()

    # then each document that should list it says so
    assert dict(report.counts) == {"robots.txt": 1, "license.rsl": 1}
    assert (
        f"robots.txt for track {left_out.public_id}: ai-input says no, the stored "
        "eligibility gives yes (ai-inference)"
    ) in report.details


@pytest.mark.parametrize(
    ("budget", "document", "listed"),
    [
        (900, "robots.txt", "Content-Usage: /t/"),
        (450, "license.rsl", '<content url="/t/'),
    ],
)
def test_past_the_size_budget_the_default_refusal_is_allowed(
    catalogue, settings, budget, document, listed
):
    # given documents so small that this one lists one track of the four
    # that permit something, then stops
    settings.REFRAIN_SIGNALS_MAX_BYTES = budget
    cache.clear()
    built = site.site_documents_build()
    assert document in built.truncated
    text = getattr(built, site.DOCUMENTS[document])
    text = text if isinstance(text, str) else text.decode()
    assert text.count(listed) == 2  # the /t/ default, and one track

    # then the tracks after the cut, which keep the default there, pass
    report = signals_differences()
    assert report.problems == 0, report.details


def test_tracks_are_read_in_chunks_with_no_query_per_track(make_track):
    # given seven tracks, read two at a time
    for _ in range(7):
        make_track()

    with CaptureQueriesContext(connection) as seven:
        report = signals_differences(chunk=2)
    for _ in range(7):
        make_track()
    with CaptureQueriesContext(connection) as fourteen:
        signals_differences(chunk=100)

    chunks = [q for q in seven.captured_queries if "WITH t AS" in q["sql"]]
    assert report.tracks == 7 and len(chunks) == 4
    # and twice the tracks in one chunk cost fewer queries, not more
    assert len(fourteen.captured_queries) < len(seven.captured_queries)


def test_beat_runs_the_check_nightly_and_the_task_records_it(catalogue):
    entries = [
        entry
        for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "consent.check_signals"
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"] == crontab(hour=3, minute=30)
    assert check_signals.name == "consent.check_signals"

    check_signals.apply().get()

    run = CheckRun.objects.get()
    assert (run.kind, run.triggered_by, run.problems) == ("signals", "beat", 0)


def test_the_audit_page_shows_the_last_run_of_each_check(client, auditor, catalogue):
    TrackConsent.objects.filter(track=catalogue[0], use=MINING).update(eligible=True)
    signals_check(triggered_by="command")
    client.force_login(auditor)

    html = client.get("/audit/").text

    assert "Nightly checks" in html
    assert "Public signals and tagged audio against the ledger" in html
    assert "<strong>1 difference</strong>" in html
    assert f"track {catalogue[0].public_id} stored eligibility" in html
    assert html.count("Not run yet") == 3
