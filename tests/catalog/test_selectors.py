import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from catalog.selectors import (
    SORTS,
    TrackFilters,
    decode_cursor,
    track_count_for_owner,
    track_for_owner,
    track_list_for_owner,
    track_page_for_owner,
)
from tests.factories import TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


def _titles(queryset) -> list[str]:
    return list(queryset.values_list("title", flat=True))


def test_track_for_owner_finds_only_the_owners_track(user):
    mine = TrackFactory(artist=user)
    theirs = TrackFactory()

    assert track_for_owner(owner=user, public_id=mine.public_id) == mine
    with pytest.raises(Http404):
        track_for_owner(owner=user, public_id=theirs.public_id)
    with pytest.raises(Http404):
        track_for_owner(owner=user, public_id="no-such-track-id")


def test_list_shows_only_the_owners_tracks(user):
    TrackFactory(artist=user, title="Mine")
    TrackFactory(title="Theirs")

    assert _titles(track_list_for_owner(owner=user, filters=TrackFilters())) == ["Mine"]


def test_search_by_title_is_a_case_insensitive_substring(user):
    for title in ("Night Drive", "Midnight Tide", "Morning", "NIGHTFALL"):
        TrackFactory(artist=user, title=title)
    TrackFactory(title="Night Drive (not mine)")

    found = track_list_for_owner(owner=user, filters=TrackFilters(q="night"))

    assert sorted(_titles(found)) == ["Midnight Tide", "NIGHTFALL", "Night Drive"]


@pytest.mark.parametrize(
    "q", ["US-RC1-76-07839", "USRC17607839", "us-rc1-76-07839", "ISRC usrc17607839"]
)
def test_search_by_isrc_in_either_form(user, q):
    TrackFactory(artist=user, title="Wanted", isrc="USRC17607839")
    TrackFactory(artist=user, title="Other", isrc="USRC17607840")

    found = track_list_for_owner(owner=user, filters=TrackFilters(q=q))

    assert _titles(found) == ["Wanted"]


def test_search_by_isrc_never_finds_another_artists_track(user):
    TrackFactory(isrc="USRC17607839")

    found = track_list_for_owner(owner=user, filters=TrackFilters(q="USRC17607839"))

    assert _titles(found) == []


def test_filter_by_licence_class(user):
    TrackFactory(artist=user, title="Indie")
    TrackFactory(artist=user, title="Signed", signed=True)

    def titles(license):
        return _titles(
            track_list_for_owner(owner=user, filters=TrackFilters(license=license))
        )

    assert titles("independent") == ["Indie"]
    assert titles("label") == ["Signed"]
    assert sorted(titles("")) == ["Indie", "Signed"]


def test_every_sort_orders_and_breaks_ties_by_id(user):
    # given tracks sharing titles and upload times
    base = timezone.now() - timedelta(days=10)
    specs = [("B", 2), ("A", 1), ("B", 1), ("A", 2), ("C", 1), ("A", 1)]
    tracks = [
        TrackFactory(artist=user, title=title, uploaded_at=base + timedelta(days=day))
        for title, day in specs
    ]

    def order(sort):
        queryset = track_list_for_owner(owner=user, filters=TrackFilters(sort=sort))
        return list(queryset.values_list("pk", flat=True))

    def expected(key, reverse):
        return [
            t.pk for t in sorted(tracks, key=lambda t: (key(t), t.pk), reverse=reverse)
        ]

    # then each sort follows its field, and equal values follow the id
    assert order("title") == expected(lambda t: t.title, False)
    assert order("-title") == expected(lambda t: t.title, True)
    assert order("uploaded") == expected(lambda t: t.uploaded_at, False)
    assert order("-uploaded") == expected(lambda t: t.uploaded_at, True)
    assert order("changed") == expected(lambda t: t.updated_at, False)
    assert order("-changed") == expected(lambda t: t.updated_at, True)


def test_total_comes_from_the_kept_counts_or_a_count_when_searching(user):
    TrackFactory.create_batch(3, artist=user)
    TrackFactory.create_batch(2, artist=user, signed=True)
    TrackFactory(artist=user, title="Night Drive")
    TrackFactory.create_batch(4)  # someone else's

    def total(**filters):
        return track_count_for_owner(owner=user, filters=TrackFilters(**filters))

    assert total() == 6
    assert total(license="independent") == 4
    assert total(license="label") == 2
    assert total(q="night") == 1
    assert total(q="night", license="label") == 0
    assert track_count_for_owner(owner=UserFactory(), filters=TrackFilters()) == 0


def _walk_forward(owner, filters, page_size):
    pages, cursor = [], ""
    while True:
        page = track_page_for_owner(
            owner=owner, filters=filters, cursor=cursor, page_size=page_size
        )
        pages.append(page)
        if not page.next_cursor:
            return pages
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", list(SORTS))
def test_keyset_pages_visit_every_track_once_both_ways(user, sort):
    # given 23 tracks with many ties on every sort value
    base = timezone.now() - timedelta(days=1)
    for number in range(23):
        TrackFactory(
            artist=user,
            title=f"Song {number % 4}",
            uploaded_at=base + timedelta(minutes=number % 3),
        )
    filters = TrackFilters(sort=sort)
    everything = list(track_list_for_owner(owner=user, filters=filters))

    # when walking Next to the end, five at a time
    pages = _walk_forward(user, filters, page_size=5)

    # then the pages hold every track exactly once, in the list's order
    assert [len(page.tracks) for page in pages] == [5, 5, 5, 5, 3]
    assert [t.pk for page in pages for t in page.tracks] == [t.pk for t in everything]
    assert [page.is_first for page in pages] == [True, False, False, False, False]
    assert pages[0].previous_cursor is None
    assert all(page.previous_cursor for page in pages[1:])
    assert pages[-1].next_cursor is None
    assert all(page.total == 23 for page in pages)

    # and walking Previous from the last page goes back through the same pages
    page = pages[-1]
    back = []
    while page.previous_cursor:
        page = track_page_for_owner(
            owner=user, filters=filters, cursor=page.previous_cursor, page_size=5
        )
        back.append(page)
    assert [[t.pk for t in p.tracks] for p in back] == [
        [t.pk for t in p.tracks] for p in reversed(pages[:-1])
    ]
    assert back[-1].is_first is True
    # and Next from a page reached by Previous goes forward again
    again = track_page_for_owner(
        owner=user, filters=filters, cursor=back[-1].next_cursor, page_size=5
    )
    assert [t.pk for t in again.tracks] == [t.pk for t in pages[1].tracks]


def test_pages_of_a_filtered_list_stay_filtered(user):
    for number in range(7):
        TrackFactory(artist=user, title=f"Night {number}")
        TrackFactory(artist=user, title=f"Day {number}", signed=True)
    filters = TrackFilters(q="night", license="independent", sort="title")

    pages = _walk_forward(user, filters, page_size=3)

    assert [[t.title for t in page.tracks] for page in pages] == [
        ["Night 0", "Night 1", "Night 2"],
        ["Night 3", "Night 4", "Night 5"],
        ["Night 6"],
    ]
    assert {page.total for page in pages} == {7}


def test_an_exact_page_has_no_empty_next_page(user):
    TrackFactory.create_batch(10, artist=user)

    pages = _walk_forward(user, TrackFilters(), page_size=5)

    assert [len(page.tracks) for page in pages] == [5, 5]


def test_an_empty_list_has_one_empty_first_page(user):
    page = track_page_for_owner(owner=user, filters=TrackFilters())

    assert (page.tracks, page.total, page.is_first) == ([], 0, True)
    assert (page.next_cursor, page.previous_cursor) == (None, None)


def _cursor(payload) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor, field_name",
    [
        ("garbage", "uploaded_at"),
        ("!!!!", "title"),
        ("", "title"),
        (base64.urlsafe_b64encode(b"\xff\xfe").decode(), "title"),
        (_cursor(["next", "x"]), "title"),
        (_cursor(["sideways", "x", 1]), "title"),
        (_cursor(["next", "x", "1"]), "title"),
        (_cursor(["next", 5, 1]), "title"),
        (_cursor(["next", "a\u0000b", 1]), "title"),
        (_cursor(["next", "\ud800", 1]), "title"),
        (_cursor(["next", "not a date", 1]), "uploaded_at"),
        (_cursor(["next", 5, 1]), "uploaded_at"),
        (_cursor(["next", "2025-13-45T00:00:00+00:00", 1]), "uploaded_at"),
        (_cursor({"a": 1, "b": 2, "c": 3}), "title"),
        (_cursor("abc"), "title"),
        # Hostile values that once reached the database as a 500:
        (_cursor(["next", "0001-01-01T00:00:00+14:00", 1]), "uploaded_at"),
        (_cursor(["next", "9999-12-31T23:59:59-14:00", 1]), "uploaded_at"),
        (_cursor(["next", "2025-01-01T00:00:00", 1]), "uploaded_at"),  # naive
        (_cursor(["next", "\ud800", 1]), "title"),
        (_cursor(["next", "a\x00b", 1]), "title"),
        (_cursor(["next", "x", 2**63]), "title"),
        (_cursor(["next", "x", 0]), "title"),
        (_cursor(["next", "x", True]), "title"),
        (_cursor(["next", "x", 1.0]), "title"),
        (_cursor(["next", ["x"], 1]), "title"),
        (_cursor(["next", {"x": 1}, 1]), "uploaded_at"),
        (_cursor(["next", None, 1]), "uploaded_at"),
        (_cursor(["next", "x", 1, "title", "extra"]), "title"),
        (base64.urlsafe_b64encode(b"[" * 100_000).decode(), "title"),
    ],
)
def test_a_malformed_cursor_decodes_to_none(cursor, field_name):
    assert decode_cursor(cursor, field_name) is None


def test_a_malformed_cursor_gives_the_first_page(user):
    tracks = TrackFactory.create_batch(3, artist=user)

    page = track_page_for_owner(
        owner=user, filters=TrackFilters(), cursor="garbage", page_size=2
    )

    assert [t.pk for t in page.tracks] == [tracks[2].pk, tracks[1].pk]
    assert page.is_first is True


def _statements(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.postgres
def test_only_a_title_search_gets_the_planner_hint(user):
    TrackFactory(artist=user, title="Night Drive", isrc="USRC17607839")

    with CaptureQueriesContext(connection) as title_search:
        track_page_for_owner(owner=user, filters=TrackFilters(q="night"))
    with CaptureQueriesContext(connection) as isrc_search:
        page = track_page_for_owner(owner=user, filters=TrackFilters(q="USRC17607839"))
    with CaptureQueriesContext(connection) as plain:
        track_page_for_owner(owner=user, filters=TrackFilters())

    hint = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"
    assert hint in _statements(title_search)
    # an ISRC is one probe of its unique index; the hint would make it a walk
    # over every one of the artist's rows
    assert hint not in _statements(isrc_search)
    assert len(page.tracks) == 1
    assert hint not in _statements(plain)


def test_a_cursor_of_another_sort_gives_the_first_page(user):
    # given a "newest first" cursor (same field as "oldest first")
    TrackFactory.create_batch(60, artist=user)
    newest = track_page_for_owner(owner=user, filters=TrackFilters(sort="-uploaded"))

    # when it is used with the opposite sort
    page = track_page_for_owner(
        owner=user, filters=TrackFilters(sort="uploaded"), cursor=newest.next_cursor
    )

    # then it is not taken as a position: the first page of that sort is shown
    first = track_page_for_owner(owner=user, filters=TrackFilters(sort="uploaded"))
    assert page.is_first
    assert [t.pk for t in page.tracks] == [t.pk for t in first.tracks]
