import html
import io
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from catalog.importer import read_rows
from catalog.models import Track
from catalog.selectors import TrackFilters, track_list_for_owner, track_page_for_owner
from catalog.services import catalog_import
from tests.factories import LabelFactory, TrackFactory

pytestmark = pytest.mark.django_db

LIST = "/tracks/"
# Whatever the catalogue size, the page depth or the filter: the session, the
# user, one query for the policy, the artist's defaults and the list's version
# (the key of the cached page), then on a miss the page of tracks, the total
# and this page's consent answers; then the rows' propagation status, never
# cached. A cache hit skips the page, total and answers.
LIST_QUERIES = 7
# A title search on PostgreSQL also tells the planner to walk the sort index:
# ``SET LOCAL`` inside its own transaction, which within a test's transaction
# is a SAVEPOINT and its RELEASE (3 statements); its total is a COUNT, cached
# per catalogue version after the first request.
TITLE_SEARCH_QUERIES = LIST_QUERIES + 3

_ROW = re.compile(r'<th scope="row"[^>]*>\s*<a href="/tracks/([A-Za-z0-9_-]+)/">')
_TOTAL = re.compile(r'id="track-total">\s*(.*?)\s*</p>', re.S)


def _row_ids(response) -> list[str]:
    return _ROW.findall(response.text)


def _total(response) -> str:
    return _TOTAL.search(response.text).group(1)


def _link(response, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]*)" rel="{rel}">', response.text)
    return LIST + html.unescape(match.group(1)) if match else None


def _first_page_link(response) -> str | None:
    match = re.search(r'<a href="([^"]*)">First page</a>', response.text)
    return LIST + html.unescape(match.group(1)) if match else None


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _ids(queryset) -> list[str]:
    return list(queryset.values_list("public_id", flat=True))


# --- who may see what ---------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "audio"])
def test_anonymous_visitors_are_sent_to_sign_in(client, suffix):
    track = TrackFactory()
    for path in (LIST, "/tracks/upload/", f"/tracks/{track.public_id}/{suffix}"):
        response = client.get(path)

        assert response.status_code == 302
        assert response["Location"] == f"{reverse('account_login')}?next={path}"


def test_owner_sees_their_track(client, user):
    label = LabelFactory(name="Northern Records")
    track = TrackFactory(
        artist=user,
        title="Harbour Lights",
        isrc="GBA1B2400001",
        duration_ms=183_000,
        signed=True,
        label=label,
    )
    client.force_login(user)

    response = client.get(f"/tracks/{track.public_id}/")

    assert response.status_code == 200
    assert "<h1>Harbour Lights</h1>" in response.text
    assert "GB-A1B-24-00001" in response.text
    assert "3:03" in response.text
    assert "Label-licensed: Northern Records" in response.text
    assert track.public_id in response.text
    assert "No file uploaded" in response.text


@pytest.mark.parametrize("suffix", ["", "audio"])
def test_another_artists_track_is_not_found(client, user, suffix):
    # given a track that belongs to someone else
    theirs = TrackFactory(title="Secret Demo")
    client.force_login(user)

    # when the artist asks for it by its public id
    response = client.get(f"/tracks/{theirs.public_id}/{suffix}")

    # then it is a 404, exactly like an id that does not exist
    assert response.status_code == 404
    assert "Secret Demo" not in response.text
    assert client.get(f"/tracks/AAAAAAAAAAAAAAAA/{suffix}").status_code == 404


def test_audio_of_a_track_without_a_file_is_not_found(client, user):
    track = TrackFactory(artist=user)
    client.force_login(user)

    assert client.get(f"/tracks/{track.public_id}/audio").status_code == 404


def test_track_pages_only_answer_get(client, user):
    track = TrackFactory(artist=user)
    client.force_login(user)

    assert client.post(LIST).status_code == 405
    assert client.post(f"/tracks/{track.public_id}/").status_code == 405
    assert client.post(f"/tracks/{track.public_id}/audio").status_code == 405


# --- the list -----------------------------------------------------------------


def test_a_new_artist_sees_the_empty_state_with_an_upload_link(client, user):
    client.force_login(user)

    response = client.get(LIST)

    assert response.status_code == 200
    assert _total(response) == "0 tracks"
    assert "No tracks yet" in response.text
    assert '<a class="button" href="/tracks/upload/">Upload your first track</a>' in (
        response.text
    )
    assert 'role="search"' not in response.text
    assert "<table" not in response.text


def test_the_list_shows_only_the_artists_own_tracks(client, user):
    TrackFactory(artist=user, title="Mine")
    TrackFactory(title="Theirs")
    client.force_login(user)

    response = client.get(LIST)

    assert _total(response) == "1 track"
    assert ">Mine</a>" in response.text
    assert "Theirs" not in response.text


def test_the_list_escapes_titles_and_names_labels(client, user):
    TrackFactory(artist=user, title="<b>Loud</b>")
    TrackFactory(artist=user, signed=True, label=LabelFactory(name="Northern Records"))
    client.force_login(user)

    response = client.get(LIST)

    assert "&lt;b&gt;Loud&lt;/b&gt;" in response.text
    assert "<b>Loud</b>" not in response.text
    assert "Label: Northern Records" in response.text


def _catalogue(artist, count: int) -> None:
    """``count`` tracks with many ties: three upload times, ten titles."""
    base = timezone.now() - timedelta(days=30)
    for number in range(count):
        TrackFactory(
            artist=artist,
            title=f"Song {number % 10:02d}",
            uploaded_at=base + timedelta(hours=number % 3),
        )


@pytest.mark.parametrize("sort", ["", "title", "-changed"])
def test_walking_next_and_previous_visits_every_track_once(client, user, sort):
    # given 120 tracks sharing titles and upload times
    _catalogue(user, 120)
    client.force_login(user)
    expected = _ids(
        track_list_for_owner(owner=user, filters=TrackFilters(sort=sort or "-uploaded"))
    )

    # when the artist follows Next to the end
    pages = [client.get(LIST + (f"?sort={sort}" if sort else ""))]
    while next_url := _link(pages[-1], "next"):
        pages.append(client.get(next_url))

    # then they see 50, 50 and 20 tracks, each exactly once, in order
    assert [len(_row_ids(page)) for page in pages] == [50, 50, 20]
    assert [public_id for page in pages for public_id in _row_ids(page)] == expected
    assert all(_total(page) == "120 tracks" for page in pages)
    assert _link(pages[0], "prev") is None
    assert _first_page_link(pages[0]) is None

    # and Previous goes back through the same pages
    back = [client.get(_link(pages[2], "prev"))]
    back.append(client.get(_link(back[0], "prev")))
    assert _row_ids(back[0]) == _row_ids(pages[1])
    assert _row_ids(back[1]) == _row_ids(pages[0])
    assert _link(back[1], "prev") is None
    assert _row_ids(client.get(_link(back[1], "next"))) == _row_ids(pages[1])


def test_pager_links_keep_the_search_filter_and_sort(client, user):
    for number in range(55):
        TrackFactory(artist=user, title=f"Night {number:02d}")
    TrackFactory(artist=user, title="Night signed", signed=True)
    TrackFactory(artist=user, title="Morning")
    client.force_login(user)

    first = client.get(LIST + "?q=night&license=independent&sort=title")

    next_url = _link(first, "next")
    assert {
        key: value for key, value in _query(next_url).items() if key != "cursor"
    } == {
        "q": ["night"],
        "license": ["independent"],
        "sort": ["title"],
    }
    second = client.get(next_url)
    assert _row_ids(second) == _ids(
        Track.objects.filter(artist=user, title__startswith="Night ").order_by("title")[
            50:55
        ]
    )
    assert _total(second) == "55 tracks match your filters"
    previous = _link(second, "prev")
    assert _query(previous)["q"] == ["night"]
    assert _query(previous)["license"] == ["independent"]
    assert _query(previous)["sort"] == ["title"]
    assert _first_page_link(second) == (
        LIST + "?q=night&license=independent&sort=title"
    )
    assert _row_ids(client.get(previous)) == _row_ids(first)


def test_search_by_title_and_by_isrc(client, user):
    night = TrackFactory(artist=user, title="Night Drive", isrc="USRC17607839")
    TrackFactory(artist=user, title="Midnight Tide")
    TrackFactory(artist=user, title="Morning")
    client.force_login(user)

    by_title = client.get(LIST, {"q": "NIGHT"})
    by_isrc = client.get(LIST, {"q": "us-rc1-76-07839"})
    by_compact_isrc = client.get(LIST, {"q": "USRC17607839"})

    assert _total(by_title) == "2 tracks match your filters"
    assert len(_row_ids(by_title)) == 2
    assert 'value="NIGHT"' in by_title.text
    for response in (by_isrc, by_compact_isrc):
        assert _row_ids(response) == [night.public_id]
        assert _total(response) == "1 track matches your filters"


def test_filter_by_licence_class_shows_the_filtered_total(client, user):
    TrackFactory.create_batch(3, artist=user)
    signed = TrackFactory(artist=user, signed=True)
    client.force_login(user)

    labelled = client.get(LIST, {"license": "label"})
    independent = client.get(LIST, {"license": "independent"})
    everything = client.get(LIST)

    assert _row_ids(labelled) == [signed.public_id]
    assert _total(labelled) == "1 track matches your filters"
    assert len(_row_ids(independent)) == 3
    assert _total(independent) == "3 tracks match your filters"
    assert _total(everything) == "4 tracks"
    assert '<option value="label" selected>' in labelled.text


def test_sort_by_title_upload_time_and_last_change(client, user):
    base = timezone.now() - timedelta(days=5)
    b = TrackFactory(artist=user, title="B", uploaded_at=base + timedelta(days=1))
    a = TrackFactory(artist=user, title="A", uploaded_at=base + timedelta(days=3))
    c = TrackFactory(artist=user, title="C", uploaded_at=base + timedelta(days=2))
    Track.objects.filter(pk=b.pk).update(updated_at=timezone.now())
    client.force_login(user)

    def order(sort):
        return _row_ids(client.get(LIST, {"sort": sort}))

    ids = {"a": a.public_id, "b": b.public_id, "c": c.public_id}
    assert order("title") == [ids["a"], ids["b"], ids["c"]]
    assert order("-title") == [ids["c"], ids["b"], ids["a"]]
    assert order("uploaded") == [ids["b"], ids["c"], ids["a"]]
    assert order("-uploaded") == [ids["a"], ids["c"], ids["b"]]
    assert order("-changed") == [ids["b"], ids["a"], ids["c"]]
    assert order("changed") == [ids["c"], ids["a"], ids["b"]]
    assert _row_ids(client.get(LIST)) == order("-uploaded")


def test_a_search_with_no_match_says_so(client, user):
    TrackFactory(artist=user, title="Morning")
    client.force_login(user)

    response = client.get(LIST, {"q": "zzz"})

    assert _total(response) == "0 tracks match your filters"
    assert "No tracks match" in response.text
    assert "Try another search or filter" in response.text
    assert "No tracks yet" not in response.text


IGNORED = "Some filters were not understood and were ignored:"


def test_an_unknown_licence_is_ignored_with_a_message_and_the_search_kept(client, user):
    TrackFactory(artist=user, title="Night Drive")
    TrackFactory(artist=user, title="Morning", signed=True)
    client.force_login(user)

    response = client.get(LIST, {"q": "night", "license": "bogus"})

    assert response.status_code == 200
    assert IGNORED in response.text
    assert (
        "Select a valid choice. bogus is not one of the available choices."
        in response.text
    )
    assert len(_row_ids(response)) == 1
    assert 'value="night"' in response.text
    assert _total(response) == "1 track matches your filters"


def test_an_unknown_sort_is_ignored_with_a_message(client, user):
    tracks = TrackFactory.create_batch(3, artist=user)
    client.force_login(user)

    response = client.get(LIST, {"sort": "bogus"})

    assert response.status_code == 200
    assert IGNORED in response.text
    assert _row_ids(response) == [t.public_id for t in reversed(tracks)]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%%%",
        "eyJub3QiOiAiYSBsaXN0In0",  # {"not": "a list"}
        "x" * 401,
        # ["next", "\ud800", 1, "-uploaded"] and a date out of range once in UTC
        "WyJuZXh0IiwiXHVkODAwIiwxLCItdXBsb2FkZWQiXQ",
        "WyJuZXh0IiwiMDAwMS0wMS0wMVQwMDowMDowMCsxNDowMCIsMSwiLXVwbG9hZGVkIl0",
    ],
)
def test_a_broken_cursor_shows_the_first_page_with_a_message(client, user, cursor):
    tracks = TrackFactory.create_batch(3, artist=user)
    client.force_login(user)

    response = client.get(LIST, {"cursor": cursor, "q": "track"})

    assert response.status_code == 200
    assert IGNORED in response.text
    assert (
        "That page link is broken or out of date; showing the first page."
        in response.text
    ) == (len(cursor) <= 400)
    assert _row_ids(response) == [t.public_id for t in reversed(tracks)]
    assert _link(response, "prev") is None
    assert 'value="track"' in response.text


def test_a_cursor_from_another_sort_is_ignored_with_a_message(client, user):
    _catalogue(user, 60)
    client.force_login(user)
    title_cursor = _query(_link(client.get(LIST, {"sort": "title"}), "next"))
    first_page = _row_ids(client.get(LIST))

    response = client.get(LIST, {"sort": "-uploaded", "cursor": title_cursor["cursor"]})

    assert IGNORED in response.text
    assert _row_ids(response) == first_page


# --- a fixed number of queries ------------------------------------------------


@pytest.mark.parametrize("catalogue_size", [10, 500])
def test_the_list_runs_a_fixed_number_of_queries(
    client, user, django_assert_max_num_queries, catalogue_size
):
    # given an artist with a small or a large catalogue (and a neighbour)
    songs = catalogue_size - 3
    _catalogue(user, songs)
    TrackFactory(artist=user, title="Night Drive", isrc="USRC17607839")
    TrackFactory.create_batch(2, artist=user, signed=True)
    TrackFactory.create_batch(3)
    client.force_login(user)
    deep = track_page_for_owner(
        owner=user, filters=TrackFilters(), page_size=catalogue_size - 5
    ).next_cursor
    song_filters = TrackFilters(q="song", license="independent", sort="title")
    deep_songs = track_page_for_owner(
        owner=user, filters=song_filters, page_size=songs - 5
    ).next_cursor
    title_search = (
        TITLE_SEARCH_QUERIES if connection.vendor == "postgresql" else LIST_QUERIES
    )
    requests = [
        ({}, min(50, catalogue_size), LIST_QUERIES),
        ({"cursor": deep}, 5, LIST_QUERIES),
        ({"license": "label"}, 2, LIST_QUERIES),
        (
            {"license": "independent", "sort": "-changed"},
            min(50, songs + 1),
            LIST_QUERIES,
        ),
        ({"q": "US-RC1-76-07839"}, 1, LIST_QUERIES),
        ({"q": "song 03"}, min(50, len(range(3, songs, 10))), title_search),
        (
            {
                "q": "song",
                "license": "independent",
                "sort": "title",
                "cursor": deep_songs,
            },
            5,
            title_search,
        ),
    ]

    for params, rows, bound in requests:
        # when the page is requested
        with django_assert_max_num_queries(bound):
            response = client.get(LIST, params)

        # then it is served, whole, within the same bound
        assert response.status_code == 200, params
        assert len(_row_ids(response)) == rows, params
        assert IGNORED not in response.text, params


# --- the total of a search follows changes ------------------------------------


def test_a_search_total_follows_a_new_track(
    client, user, django_capture_on_commit_callbacks
):
    # given a search whose total has been shown (and cached)
    TrackFactory(artist=user, title="Night Drive")
    client.force_login(user)
    assert _total(client.get(LIST, {"q": "night"})) == "1 track matches your filters"

    # when another matching track is created and committed
    with django_capture_on_commit_callbacks(execute=True):
        TrackFactory(artist=user, title="Night Bus")

    # then the same search counts it
    response = client.get(LIST, {"q": "night"})
    assert _total(response) == "2 tracks match your filters"
    assert len(_row_ids(response)) == 2


def test_a_search_total_follows_a_licence_change(
    client, user, django_capture_on_commit_callbacks
):
    TrackFactory(artist=user, title="Night Drive", isrc="USRC17607839")
    client.force_login(user)
    search = {"q": "night", "license": "label"}
    assert _total(client.get(LIST, search)) == "0 tracks match your filters"
    csv = (
        "isrc,title,artist_email,license_class,label,duration_ms\n"
        f"USRC17607839,Night Drive,{user.email},label,Northern Records,215000\n"
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = catalog_import(rows=read_rows(io.StringIO(csv), fmt="csv"))

    assert report.reclassified_track_ids == [Track.objects.get(isrc="USRC17607839").pk]
    assert _total(client.get(LIST, search)) == "1 track matches your filters"


def test_a_search_total_follows_an_import(
    client, user, django_capture_on_commit_callbacks, invitation_queue
):
    TrackFactory(artist=user, title="Night Drive", isrc="USRC17607839")
    client.force_login(user)
    assert _total(client.get(LIST, {"q": "remaster"})) == (
        "0 tracks match your filters"
    )
    csv = (
        "isrc,title,artist_email,license_class,label,duration_ms\n"
        f"USRC17607839,Night Drive (Remastered),{user.email},independent,,\n"
    )

    with django_capture_on_commit_callbacks(execute=True):
        report = catalog_import(rows=read_rows(io.StringIO(csv), fmt="csv"))

    assert report.updated == 1
    assert _total(client.get(LIST, {"q": "remaster"})) == (
        "1 track matches your filters"
    )
