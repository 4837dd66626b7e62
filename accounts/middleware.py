from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.cache import patch_cache_control


def user_has_mfa(user) -> bool:
    """True when the user has a second factor (TOTP or a security key)."""
    return Authenticator.objects.filter(
        user=user,
        type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN],
    ).exists()


class StaffMFARequiredMiddleware:
    """Keep staff out of staff pages until they have enrolled a second factor.

    Controlled by ``REFRAIN_STAFF_MFA_REQUIRED``; the staff pages are the URL
    prefixes in ``REFRAIN_STAFF_PATH_PREFIXES`` (the admin and the audit view).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.REFRAIN_STAFF_MFA_REQUIRED
            and request.user.is_authenticated
            and request.user.is_staff
            and request.path.startswith(tuple(settings.REFRAIN_STAFF_PATH_PREFIXES))
            and not user_has_mfa(request.user)
        ):
            messages.warning(
                request,
                "Staff pages need two-factor authentication. "
                "Set up an authenticator app or a security key to continue.",
            )
            return redirect("mfa_index")
        return self.get_response(request)


class PrivateResponsesMiddleware:
    """Keep what a signed-in artist is shown out of every cache.

    Every page a signed-in user sees carries their data (their tracks,
    receipts, tokens, settings; at the least their address in the footer),
    and every API answer to a request that carries credentials
    (``Authorization``: a personal token, or the platform's) is theirs alone.
    Those responses are ``Cache-Control: private, no-store``, so neither a
    shared proxy nor the browser's back-button cache on a shared computer
    keeps a copy. Anonymous pages are left as they are.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Authorization" in request.headers or request.user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
