from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import services
from accounts.forms import ProfileForm, TokenCreateForm
from accounts.models import PersonalAccessToken
from accounts.selectors import tokens_for_user
from accounts.services import user_update_profile


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("tracks:list")
    return render(request, "pages/home.html")


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            user_update_profile(
                user=request.user, display_name=form.cleaned_data["display_name"]
            )
            messages.success(request, "Your profile was saved.")
            return redirect("accounts:profile")
    else:
        form = ProfileForm(initial={"display_name": request.user.display_name})
    return render(request, "accounts/profile.html", {"form": form})


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/settings.html")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List the artist's API tokens and create one.

    A new token's plaintext is rendered in the answer to the POST itself and
    nowhere else (no redirect through the session, never cached): it is shown
    once, and only its hash is kept.
    """
    created, plaintext = None, ""
    status = 200
    if request.method == "POST":
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            created, plaintext = services.token_create(
                user=request.user, name=form.cleaned_data["name"]
            )
            form = TokenCreateForm()
        else:
            status = 400
    else:
        form = TokenCreateForm()
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": tokens_for_user(user=request.user),
            "created": created,
            "plaintext": plaintext,
        },
        status=status,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        revoked = services.token_revoke(user=request.user, token_id=token_id)
    except PersonalAccessToken.DoesNotExist:
        raise Http404("No such token.") from None
    if revoked:
        messages.success(
            request, "The token was revoked. Requests that use it are now refused."
        )
    return redirect("accounts:tokens")
