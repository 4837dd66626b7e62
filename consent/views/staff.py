"""Staff pages: the policy editor (the audit is ``consent.views.audit``)."""

import hashlib

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from catalog.models import LicenseClass
from consent import services
from consent.forms import (
    PolicyForm,
)
from consent.models import Rule
from consent.policy import policy_current
from consent.uses import USES
from consent.views.common import staff_page

# --- Staff -------------------------------------------------------------------------


def _is_policy_admin(user) -> bool:
    return user.is_superuser or user.groups.filter(name="policy-admins").exists()


@staff_page
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest) -> HttpResponse:
    if not _is_policy_admin(request.user):
        raise PermissionDenied("Only policy admins change the policy.")
    policy = policy_current()
    preview = None
    if request.method == "POST":
        form = PolicyForm(request.POST, current=policy.rules)
        if form.is_valid():
            rules = form.rules()
            fingerprint = _rules_fingerprint(rules)
            previewed = request.POST.get("previewed", "")
            if "confirm" in request.POST and previewed != fingerprint:
                # Saving what was not previewed would hide its effect: show
                # the preview of these rules first.
                messages.warning(
                    request,
                    "The rules changed after the preview. Check what they would "
                    "change, then save.",
                )
            if "confirm" in request.POST and previewed == fingerprint:
                try:
                    version = services.policy_publish(
                        rules=rules,
                        actor=request.user,
                        reason=form.cleaned_data["reason"],
                    )
                except services.ConsentError as error:
                    form.add_error(None, str(error))
                else:
                    messages.success(
                        request,
                        f"Policy v{version.number} is saved. Tracks are being "
                        "re-evaluated in the background; affected artists will "
                        "get one e-mail each.",
                    )
                    return redirect("audit:index")
            if preview is None and not form.non_field_errors():
                preview = [
                    {
                        "class_name": LicenseClass(cls).label,
                        "use": USES[use].name,
                        "old": Rule(change["old"]).label,
                        "new": Rule(change["new"]).label,
                        "gain": change["gain"],
                        "lose": change["lose"],
                    }
                    for (cls, use), change in services.policy_preview(
                        rules=rules
                    ).items()
                ]
    else:
        form = PolicyForm(current=policy.rules)
    return render(
        request,
        "consent/policy_edit.html",
        {
            "form": form,
            "preview": preview,
            "policy": policy,
            "previewed": _rules_fingerprint(form.rules())
            if preview is not None
            else "",
        },
    )


def _rules_fingerprint(rules: dict[tuple[str, str], str]) -> str:
    return hashlib.sha256(repr(sorted(rules.items())).encode()).hexdigest()[:32]
