"""One page of the artist's track list with its consent controls, cached
per version of the list (the rows' HTML is ``consent.rows``)."""

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from django.core.cache import cache
from django.utils.safestring import SafeString

from catalog.rows import track_rows
from catalog.selectors import SORT_LABELS, track_page_for_owner
from consent.policy import policy_promise
from consent.propagation.status import propagation_status_for
from consent.propagation_html import rows_with_status
from consent.rows import consent_rows, rows_html
from consent.selectors import consents_for_tracks, list_state

# --- The list page, cached -------------------------------------------------------


@dataclass
class ListPage:
    rows_html: SafeString
    total: int
    sort: str
    next_cursor: str | None
    previous_cursor: str | None
    is_first: bool
    # The page's tracks in row order: (id, consent version, public id).
    tracks: list[tuple[int, int, str]]
    # The policy's promise about silence (``policy_promise``), for the page's
    # words: the key holds the rules, so a cached page's is current.
    promise: str = ""
    cached: bool = False

    @property
    def sort_label(self) -> str:
        return SORT_LABELS[self.sort]


LIST_CACHE_SECONDS = 300


class _NearCache:
    """The newest pages this process served, in front of the shared cache.

    A page's key names the list's version (``list_state``), as in the shared
    cache: a process may keep its own copy, and a busy list skips the shared
    cache's round trip and unpickling (~1 ms of a ~10 ms request). Bounded
    in count and in time, shorter than the shared cache's (a copy taken from
    an entry about to expire must not outlive it by much).
    """

    def __init__(self, size: int, seconds: int):
        self.size, self.seconds = size, seconds
        self._pages: OrderedDict[str, tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            found = self._pages.get(key)
            if found is None:
                return None
            if found[0] < time.monotonic():
                del self._pages[key]
                return None
            self._pages.move_to_end(key)
            return found[1]

    def set(self, key: str, page: dict) -> None:
        with self._lock:
            self._pages[key] = (time.monotonic() + self.seconds, page)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._pages.clear()


_near = _NearCache(size=64, seconds=60)


def track_list_page(*, owner, filters, consent_filters, cursor: str) -> ListPage:
    """One page of the artist's list with its controls, cached per version,
    and each row's propagation status, never cached.

    The key holds everything the rows depend on: the artist, the list's
    version (``list_state``), the policy version, the artist's
    defaults, the filters and the cursor. Reading the key costs one query
    (``list_state``); building a page costs three more plus the HTML. The
    statuses cost one more, cached page or not.
    """
    policy, defaults, version = list_state(owner=owner)
    raw_key = repr(
        (
            owner.pk,
            version,
            policy.number,
            sorted(policy.rules.items()),
            sorted(defaults.items()),
            filters,
            consent_filters,
            cursor,
        )
    )
    # v4: the answers' markup inherits its swap from the table (v3: pages
    # hold their tracks, a status slot per row and the promise).
    key = "tracklist:v4:" + hashlib.sha256(raw_key.encode()).hexdigest()
    # Which tracks have an overdue acknowledgement moves with the clock and
    # with the partners' acknowledgements, which the key does not hold: that
    # filter's pages are built every time.
    cacheable = not consent_filters.ack
    # The process's copy is keyed as the shared cache stores the page (its
    # prefix included: tests give each test its own).
    near_key = cache.make_key(key)
    found = None
    if cacheable:
        found = _near.get(near_key)
        if found is None:
            found = cache.get(key)
            if found is not None:
                _near.set(near_key, found)
    if found is not None:
        # Its rows_html is a plain str (written below), made safe again by
        # rows_with_status.
        page = ListPage(**{**found, "cached": True})
    else:
        page = _list_page_build(
            owner=owner,
            filters=filters,
            consent_filters=consent_filters,
            cursor=cursor,
            policy=policy,
            defaults=defaults,
        )
        if cacheable:
            built = asdict(page)
            cache.set(key, built, LIST_CACHE_SECONDS)
            _near.set(near_key, built)
    # The version of each track is the one its cached row shows: the key
    # moves with every consent change.
    statuses = propagation_status_for(
        track_ids_versions={pk: version for pk, version, _ in page.tracks}
    )
    page.rows_html = rows_with_status(
        page.rows_html,
        public_ids=[public_id for _, _, public_id in page.tracks],
        statuses=[statuses[pk] for pk, _, _ in page.tracks],
    )
    return page


def _list_page_build(
    *, owner, filters, consent_filters, cursor: str, policy, defaults
) -> ListPage:
    page = track_page_for_owner(
        owner=owner, filters=filters, cursor=cursor, extra=consent_filters.as_q()
    )
    states = consents_for_tracks(track_ids=[t.pk for t in page.tracks])
    rows = consent_rows(
        track_rows=track_rows(page.tracks),
        license_classes={t.public_id: t.license_class for t in page.tracks},
        states={t.public_id: states.get(t.pk, {}) for t in page.tracks},
        defaults=defaults,
        policy=policy,
    )
    return ListPage(
        rows_html=str(rows_html(rows)),
        total=page.total,
        sort=page.sort,
        next_cursor=page.next_cursor,
        previous_cursor=page.previous_cursor,
        is_first=page.is_first,
        tracks=[(t.pk, t.consent_version, t.public_id) for t in page.tracks],
        promise=policy_promise(policy),
    )
