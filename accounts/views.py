from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import ProfileForm
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
