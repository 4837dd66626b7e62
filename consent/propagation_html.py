"""A track's propagation status as the artist's pages show it: the list's
rows, the track page and the partial they poll (issue 11).

One definition of the markup, formatted in Python like the list's rows
(``consent.rows``). The live region (``role="status"``) stays in the page;
only the status inside it is swapped, so a screen reader hears each change
(a region that is itself replaced is a new node, and is not announced).
While the status can still change by itself the inner element asks for its
successor every 2 s; once it is settled the answer carries no trigger, which
ends the polling. Without JavaScript a reload shows the same.
"""

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from config.reverse_once import reverse_once
from consent.propagation.status import Status

POLL_SECONDS = 2

_STATUS = (
    '<span id="prop-{public_id}" class="propagation propagation-{state}"{poll}>'
    "{text}</span>"
)
# Its own target: the list's body makes "closest td" the default for the
# answers' buttons.
_POLL = ' hx-get="{url}" hx-trigger="{trigger}" hx-target="this" hx-swap="outerHTML"'
_REGION = (
    '<span class="propagation-region" role="status" aria-live="polite">{status}</span>'
)
# What a switch answers besides its control (out of band, no query on the
# busiest write): the row's status becomes pending and asks at once for the
# real one.
_SWITCHED = (
    '<span id="prop-{public_id}" class="propagation propagation-pending" '
    'hx-swap-oob="outerHTML" hx-get="{url}" hx-target="this" '
    f'hx-trigger="load, every {POLL_SECONDS}s" hx-swap="outerHTML">Pending</span>'
)


def propagation_url(public_id: str) -> str:
    """Where a track's status is polled (``tracks:propagation``); public ids
    are URL-safe, so the prefix is reversed once."""
    return f"{_propagation_prefix()}{public_id}/propagation/"


def _propagation_prefix() -> str:
    return reverse_once("tracks:propagation", "_")[: -len("_/propagation/")]


def status_html(status: Status, *, public_id: str, url: str) -> SafeString:
    """The status alone: what the partial endpoint answers."""
    return mark_safe(_status(status, escape(public_id), escape(url)))  # noqa: S308 - see _status


def status_region_html(status: Status, *, public_id: str, url: str) -> SafeString:
    """The status in its live region, as a page shows it."""
    return mark_safe(  # noqa: S308 - see _status
        _REGION.format(status=_status(status, escape(public_id), escape(url)))
    )


def _status(status: Status, public_id: str, url: str) -> str:
    """Formatted with ``str.format`` (the list fills 50 a request, never
    cached): the id and URL come escaped, the text is escaped here and the
    state and trigger are ours."""
    poll = (
        ""
        if status.settled
        else _POLL.format(url=url, trigger=f"every {POLL_SECONDS}s")
    )
    return _STATUS.format(
        public_id=public_id,
        state=status.state,
        poll=poll,
        text=escape(status.text),
    )


def switched_html(*, public_id: str) -> SafeString:
    return format_html(_SWITCHED, public_id=public_id, url=propagation_url(public_id))


# Where each row of a cached page takes its status: the page's HTML is cached,
# a status is never (it changes with deliveries, which move nothing the
# page's cache key holds). Titles and other values are escaped, so the
# comment cannot occur in them.
STATUS_SLOT = mark_safe("<!--propagation-->")  # noqa: S308 - a constant
_ID = "<id>"  # where a track's id goes in a status formatted once


def rows_with_status(
    html: str, *, public_ids: list[str], statuses: list[Status]
) -> SafeString:
    """Fill each row's slot, in order, with its track's status."""
    parts = html.split(STATUS_SLOT)
    if len(parts) != len(public_ids) + 1:
        raise ValueError("one status slot per row expected")
    prefix = escape(_propagation_prefix())
    # A page's statuses are mostly alike: each distinct one is formatted once
    # with a marker where its track's id goes (it holds "<", which escaping
    # turns into "&lt;" in every value, so no value can contain it).
    shapes: dict[Status, list[str]] = {}
    filled = [parts[0]]
    for public_id, status, part in zip(public_ids, statuses, parts[1:], strict=True):
        shape = shapes.get(status)
        if shape is None:
            shape = shapes[status] = _REGION.format(
                status=_status(status, _ID, prefix + _ID + "/propagation/")
            ).split(_ID)
        filled.append(escape(public_id).join(shape))
        filled.append(part)
    return mark_safe("".join(filled))  # noqa: S308 - safe fragments joined
