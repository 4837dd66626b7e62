"""Tracks that enter through an upload or an import get their consent rows
and start on the artist's defaults, in the same transaction."""

from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.importer import CatalogRow
from catalog.models import Track
from consent.models import ArtistDefault, LedgerEntry, TrackConsent
from consent.services import catalog_import, consent_set
from consent.uses import USE_ORDER
from tests.catalog.helpers import wav_bytes
from tests.factories import LabelFactory, UserFactory


def _row(line, isrc, email, license_class="independent", label=""):
    return CatalogRow(line, isrc, f"Song {line}", email, license_class, label, 200000)


def test_an_upload_creates_four_consent_rows_on_the_artists_defaults(
    db, client, settings, tmp_path
):
    # given an artist whose default for data mining is yes
    settings.MEDIA_ROOT = str(tmp_path)
    artist = UserFactory()
    ArtistDefault.objects.create(artist=artist, use="data-mining", decision="granted")
    client.force_login(artist)

    # when they upload a WAV
    response = client.post(
        "/tracks/upload/",
        {"files": SimpleUploadedFile("song.wav", wav_bytes(), "audio/wav")},
    )

    # then the track has one row per use, on default, eligible only for mining
    assert response.status_code == 302
    track = Track.objects.get(artist=artist)
    rows = dict(TrackConsent.objects.filter(track=track).values_list("use", "eligible"))
    assert rows == {use: use == "data-mining" for use in USE_ORDER}
    assert set(
        TrackConsent.objects.filter(track=track).values_list("decision", flat=True)
    ) == {""}
    # and the ledger explains why it started eligible
    [entry] = LedgerEntry.objects.filter(track=track)
    assert (entry.use, entry.source, entry.new_eligible) == (
        "data-mining",
        "upload",
        True,
    )


def test_the_import_gives_new_tracks_rows_and_reevaluates_reclassified_ones(db):
    artist = UserFactory(email="artist@example.com")
    report = catalog_import(rows=[_row(2, "QZRFN2500001", artist.email)])
    track = Track.objects.get(isrc="QZRFN2500001")
    assert report.created == 1
    assert TrackConsent.objects.filter(track=track).count() == 4

    # the artist grants a use, then the catalogue says the track is label-licensed
    consent_set(
        track=track, use="ai-training", state="granted", actor=artist, source="web"
    )
    assert TrackConsent.objects.get(track=track, use="ai-training").eligible
    LabelFactory(name="Moonlight Records")
    report = catalog_import(
        rows=[_row(2, "QZRFN2500001", artist.email, "label", "Moonlight Records")]
    )

    assert report.updated == 1
    row = TrackConsent.objects.get(track=track, use="ai-training")
    assert (row.decision, row.eligible, row.license_class) == (
        "granted",
        False,
        "label",
    )
    last = LedgerEntry.objects.filter(track=track).order_by("-consent_version")[0]
    assert (last.source, last.old_eligible, last.new_eligible) == (
        "import",
        True,
        False,
    )


def test_a_track_moved_to_another_artist_follows_the_new_artists_defaults(db):
    # given a track of one artist, on default, and a second artist whose
    # default for data mining is yes
    first, second = UserFactory(), UserFactory()
    ArtistDefault.objects.create(artist=second, use="data-mining", decision="granted")
    catalog_import(rows=[_row(2, "QZRFN2500012", first.email)])
    track = Track.objects.get(isrc="QZRFN2500012")
    consent_set(
        track=track, use="ai-training", state="granted", actor=first, source="web"
    )
    assert not TrackConsent.objects.get(track=track, use="data-mining").eligible

    # when the catalogue says the track is the second artist's
    report = catalog_import(rows=[_row(2, "QZRFN2500012", second.email)])

    # then its rows name the new artist, its unanswered use follows the new
    # artist's default (logged by the import) and its decision is kept
    assert report.updated == 1
    rows = {
        row.use: (row.artist_id, row.decision, row.eligible)
        for row in TrackConsent.objects.filter(track=track)
    }
    assert rows == {
        "genai-training": (second.pk, "", False),
        "ai-training": (second.pk, "granted", True),
        "ai-inference": (second.pk, "", False),
        "data-mining": (second.pk, "", True),
    }
    last = LedgerEntry.objects.filter(track=track).order_by("-consent_version")[0]
    assert (last.use, last.source, last.old_eligible, last.new_eligible) == (
        "data-mining",
        "import",
        False,
        True,
    )
    assert last.note == "licence class or artist changed by the catalogue import"


def test_a_licence_class_change_keeps_the_decision_and_locks_the_use(db):
    artist = UserFactory()
    catalog_import(rows=[_row(2, "QZRFN2500009", artist.email)])
    track = Track.objects.get(isrc="QZRFN2500009")
    consent_set(
        track=track, use="genai-training", state="granted", actor=artist, source="web"
    )

    report = catalog_import(
        rows=[_row(2, "QZRFN2500009", artist.email, "label", LabelFactory().name)]
    )

    assert report.updated == 1
    row = TrackConsent.objects.get(track=track, use="genai-training")
    assert (row.decision, row.eligible) == ("granted", False)
