from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.models import ArtistCatalogStats, Label, Track
from catalog.services import (
    label_get_or_create,
    stats_rebuild,
    track_create,
)
from tests.catalog.helpers import fresh_counts, kept_counts
from tests.factories import LabelFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_track_create_counts_the_track(user):
    label = LabelFactory()

    track_create(artist=user, title="  Night Drive  ", isrc="USRC17607839")
    track_create(artist=user, title="Tide", license_class="label", label=label)
    track_create(artist=user, title="Demo")

    assert kept_counts() == {(user.pk, "independent"): 2, (user.pk, "label"): 1}
    assert kept_counts() == fresh_counts()
    track = Track.objects.get(isrc="USRC17607839")
    assert track.title == "Night Drive"
    assert track.uploaded_at == track.updated_at


def test_track_create_stores_an_empty_isrc_as_null(user):
    track_create(artist=user, title="One", isrc="")
    track_create(artist=user, title="Two", isrc=None)

    assert list(Track.objects.values_list("isrc", flat=True)) == [None, None]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"license_class": "label"}, "__all__"),
        ({"isrc": "usrc17607839"}, "__all__"),
        ({"isrc": "US-RC1-76-07839"}, "isrc"),
        ({"title": "   "}, "title"),
        ({"license_class": "major"}, "license_class"),
    ],
)
def test_track_create_validates_before_writing(user, kwargs, field):
    arguments = {"artist": user, "title": "T", **kwargs}

    with pytest.raises(ValidationError) as refused:
        track_create(**arguments)

    assert field in refused.value.message_dict
    assert Track.objects.count() == 0
    assert ArtistCatalogStats.objects.count() == 0


def test_track_create_refuses_a_taken_isrc_and_counts_nothing(user):
    TrackFactory(artist=user, isrc="USRC17607839")

    with pytest.raises(ValidationError) as refused:
        track_create(artist=UserFactory(), title="Copy", isrc="USRC17607839")

    assert refused.value.messages == [
        "Constraint “catalog_track_isrc_unique” is violated."
    ]
    assert Track.objects.count() == 1
    assert kept_counts() == {(user.pk, "independent"): 1}


def test_stats_rebuild_repairs_counts_after_out_of_band_writes(user):
    other = UserFactory()
    TrackFactory.create_batch(2, artist=user)
    TrackFactory(artist=other, signed=True)
    # a write that bypassed the services
    Track.objects.create(artist=user, title="Raw", license_class="independent")
    Track.objects.filter(artist=other).delete()
    assert kept_counts() != fresh_counts()

    stats_rebuild()

    assert kept_counts() == fresh_counts() == {(user.pk, "independent"): 3}


def test_stats_rebuild_for_some_artists_leaves_the_others(user):
    other = UserFactory()
    TrackFactory(artist=user)
    TrackFactory(artist=other)
    Track.objects.create(artist=user, title="Raw")
    Track.objects.create(artist=other, title="Raw")

    stats_rebuild(artist_ids=[user.pk])

    assert kept_counts() == {
        (user.pk, "independent"): 2,
        (other.pk, "independent"): 1,
    }


def test_label_get_or_create_finds_a_label_by_its_slug():
    first = label_get_or_create(name="  Northern   Records ")
    again = label_get_or_create(name="northern records")

    assert first == again
    assert (first.name, first.slug) == ("Northern Records", "northern-records")
    assert Label.objects.count() == 1


def test_factory_keeps_uploaded_at(user):
    when = timezone.now() - timedelta(days=3)

    track = TrackFactory(artist=user, uploaded_at=when)

    stored = Track.objects.get(pk=track.pk)
    assert stored.uploaded_at == stored.updated_at == when
