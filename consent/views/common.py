"""What the consent views share."""

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

# HTMX error answers are words, never markup (HTMX does not swap them in).
PLAIN_TEXT = "text/plain; charset=utf-8"


def safe_next(request: HttpRequest, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    # Only a path: redirect() would read any other text as a view's name (a
    # 500 when there is none). isprintable: urlsplit drops a newline or tab
    # before the host check, but the Location header would still carry it.
    if (
        candidate.startswith("/")
        and candidate.isprintable()
        and url_has_allowed_host_and_scheme(
            candidate,
            allowed_hosts={request.get_host()},
            require_https=request.is_secure(),
        )
    ):
        return candidate
    return fallback


def tracks_count(count: int) -> str:
    """ "1 track", "2 tracks"."""
    return f"{count} track{'' if count == 1 else 's'}"
