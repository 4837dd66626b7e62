"""What the consent views share."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS

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


# --- Who may see and change the staff pages of consumers and partners --------


def in_group(user, name: str) -> bool:
    return user.groups.filter(name=name).exists()


def can_manage(user) -> bool:
    """Policy admins (and superusers) change consumers, partners and keys."""
    return user.is_superuser or in_group(user, GROUP_POLICY_ADMINS)


def staff_viewer(request: HttpRequest, *, refusal: str) -> bool:
    """Refuse (403, ``refusal``) whoever is neither a policy admin nor an
    auditor; True for a policy admin."""
    managing = can_manage(request.user)
    if not (managing or in_group(request.user, GROUP_AUDITORS)):
        raise PermissionDenied(refusal)
    return managing


def staff_manager(request: HttpRequest, *, refusal: str) -> None:
    """Refuse (403, ``refusal``) whoever is not a policy admin."""
    if not can_manage(request.user):
        raise PermissionDenied(refusal)


STAFF_ONLY = (
    "This page is for the platform's staff: auditors and policy admins. Your "
    "tracks and your answers are on your own pages."
)


def staff_page(view):
    """A staff page: a visitor who is not signed in goes to the sign-in page
    (and back here after it); a signed-in account that is not staff gets the
    site's 403 page, which says the page is for staff."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied(STAFF_ONLY)
        return view(request, *args, **kwargs)

    return wrapped
