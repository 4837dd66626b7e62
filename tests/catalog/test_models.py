import re

import pytest
from django.db import IntegrityError, transaction

from catalog.models import LicenseClass, Track, new_public_id
from tests.factories import LabelFactory, TrackFactory

pytestmark = pytest.mark.django_db


def _raw_save(track: Track) -> None:
    track.save()


def _raw_bulk_create(track: Track) -> None:
    Track.objects.bulk_create([track])


# Both ways skip full_clean(): only the database stands in the way.
WRITES = pytest.mark.parametrize(
    "write", [_raw_save, _raw_bulk_create], ids=["save", "bulk_create"]
)


def _refused_by_database(write, track: Track) -> str:
    """Write ``track`` bypassing validation; return the database's complaint."""
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        write(track)
    return str(refused.value)


@WRITES
def test_label_track_without_label_is_refused_by_the_database(write, user):
    # given a label-licensed track with no label
    track = Track(artist=user, title="Signed", license_class=LicenseClass.LABEL)

    # when it is written without validation
    message = _refused_by_database(write, track)

    # then the check constraint refuses it and nothing is stored
    assert "catalog_track_label_matches_class" in message
    assert Track.objects.count() == 0


@WRITES
def test_independent_track_with_label_is_refused_by_the_database(write, user):
    label = LabelFactory()
    track = Track(
        artist=user,
        title="Self-released",
        license_class=LicenseClass.INDEPENDENT,
        label=label,
    )

    message = _refused_by_database(write, track)

    assert "catalog_track_label_matches_class" in message
    assert Track.objects.count() == 0


@WRITES
def test_matching_class_and_label_are_accepted(write, user):
    label = LabelFactory()

    write(Track(artist=user, title="Mine", license_class=LicenseClass.INDEPENDENT))
    write(
        Track(
            artist=user, title="Theirs", license_class=LicenseClass.LABEL, label=label
        )
    )

    assert sorted(Track.objects.values_list("title", "label_id")) == [
        ("Mine", None),
        ("Theirs", label.pk),
    ]


@WRITES
def test_isrc_is_unique_when_present(write, user):
    Track.objects.create(artist=user, title="First", isrc="USRC17607839")

    message = _refused_by_database(
        write, Track(artist=user, title="Second", isrc="USRC17607839")
    )

    # PostgreSQL names the constraint, SQLite the column
    assert "catalog_track_isrc_unique" in message or "catalog_track.isrc" in message
    assert list(Track.objects.values_list("title", flat=True)) == ["First"]


@WRITES
def test_many_tracks_may_have_no_isrc(write, user):
    write(Track(artist=user, title="Demo one", isrc=None))
    write(Track(artist=user, title="Demo two", isrc=None))

    assert list(Track.objects.order_by("title").values_list("title", "isrc")) == [
        ("Demo one", None),
        ("Demo two", None),
    ]


@WRITES
@pytest.mark.parametrize(
    "isrc",
    [
        "usrc17607839",  # lower case
        "US-RC1-76-07",  # hyphenated, 12 characters
        "USRC1760783X",  # letter in the designation
        "USRC1A607839",  # letter in the year
        "1SRC17607839",  # digit in the country code
        "",  # empty is not "no ISRC": that is NULL
    ],
)
def test_isrc_must_be_stored_normalised(write, user, isrc):
    message = _refused_by_database(write, Track(artist=user, title="T", isrc=isrc))

    assert "catalog_track_isrc_normalised" in message
    assert Track.objects.count() == 0


def test_public_id_is_random_url_safe_and_not_sequential(user):
    # given tracks created one after the other
    tracks = TrackFactory.create_batch(20, artist=user)

    # then each has its own 16-character URL-safe id (96 random bits)
    ids = [track.public_id for track in tracks]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", public_id) for public_id in ids)
    assert len(set(ids)) == 20
    # and the ids do not follow creation order (1 chance in 20! by accident)
    assert ids != sorted(ids)
    assert ids != sorted(ids, reverse=True)
    # and the URL uses the public id, never the primary key
    assert tracks[0].get_absolute_url() == f"/tracks/{tracks[0].public_id}/"
    assert str(tracks[0].pk) not in tracks[0].get_absolute_url().split("/")


def test_new_public_id_does_not_repeat():
    ids = {new_public_id() for _ in range(10_000)}

    assert len(ids) == 10_000


def test_isrc_and_duration_display():
    track = Track(title="Night Drive", isrc="USRC17607839", duration_ms=215_400)

    assert track.isrc_display == "US-RC1-76-07839"
    assert track.duration_display == "3:35"
    assert str(track) == "Night Drive"
    assert Track(title="x").isrc_display == ""
    assert Track(title="x").duration_display == ""
    assert Track(title="x", duration_ms=59_600).duration_display == "1:00"
