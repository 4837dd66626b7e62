"""The list page's own copy of the newest pages (``consent.list_page``): in
front of the shared cache, bounded, expiring, never stale under its key."""

from consent import list_page
from consent.list_page import _NearCache
from tests.consent.helpers import GENAI

LIST = "/tracks/"
# the list's version, the statuses (plus the session and the user)
CACHED_LIST_QUERIES = 4


def test_the_copy_keeps_the_newest_pages_only():
    near = _NearCache(size=2, seconds=60)
    near.set("a", {"page": "a"})
    near.set("b", {"page": "b"})
    assert near.get("a") == {"page": "a"}  # a is now the newest read

    near.set("c", {"page": "c"})

    assert (near.get("a"), near.get("b"), near.get("c")) == (
        {"page": "a"},
        None,
        {"page": "c"},
    )


def test_the_copy_forgets_a_page_when_its_time_is_up(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(list_page.time, "monotonic", lambda: clock[0])
    near = _NearCache(size=8, seconds=300)
    near.set("a", {"page": "a"})

    clock[0] += 299
    kept = near.get("a")
    clock[0] += 2
    gone = near.get("a")

    assert (kept, gone) == ({"page": "a"}, None)


class _Empty:
    """A shared cache that holds nothing (its keys made as the real one's)."""

    def __init__(self, real):
        self.make_key = real.make_key

    def get(self, key, default=None):
        return default

    def set(self, key, value, timeout=None):
        pass


def _rows(page: str) -> str:
    return page.split("<tbody", 1)[1].split("</tbody>", 1)[0]


def test_a_page_this_process_built_is_served_without_the_shared_cache(
    signed_in, artist, make_track, django_assert_num_queries, monkeypatch
):
    # given a list page built once
    make_track(artist=artist, title="Night Drive")
    first = signed_in.get(LIST).text

    # when the shared cache cannot answer
    monkeypatch.setattr(list_page, "cache", _Empty(list_page.cache))
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        again = signed_in.get(LIST).text

    # then the process's copy serves the same rows, without building them
    assert _rows(again) == _rows(first)
    assert "Night Drive" in _rows(again)


def test_a_copy_is_never_served_after_a_change(signed_in, artist, make_track):
    # given a page in this process's copy
    track = make_track(artist=artist, title="Night Drive")
    assert "Generative AI training for “Night Drive”: My default: No" in (
        signed_in.get(LIST).text
    )

    # when the track changes (the list's version moves)
    signed_in.post("/tracks/switch/", {"set": f"{track.public_id}|{GENAI}|granted"})

    # then the next read is the new page
    assert "Generative AI training for “Night Drive”: Yes" in (signed_in.get(LIST).text)
