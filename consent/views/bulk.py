"""Bulk changes: start one, and its progress page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from consent import services
from consent.forms import (
    BulkChangeForm,
)
from consent.selectors import (
    bulk_job_for_owner,
)
from consent.uses import USES
from consent.views.common import safe_next, tracks_count


@login_required
@require_POST
def bulk_change(request: HttpRequest) -> HttpResponse:
    form = BulkChangeForm(request.POST)
    back = safe_next(request, reverse("tracks:list"))
    if not form.is_valid():
        for error in form.non_field_errors() or [
            "That bulk change was not understood."
        ]:
            messages.error(request, error)
        for name, errors in form.errors.items():
            if name != "__all__":
                messages.error(request, f"{name}: {' '.join(errors)}")
        return redirect(back)
    data = form.cleaned_data
    if data["scope"] == "all" and request.POST.get("confirmed") != "yes":
        # Every track that matches: say how many and what, and ask first.
        return render(
            request,
            "consent/bulk_confirm.html",
            {
                "count": services.bulk_scope_count(
                    artist=request.user, filters=form.filters()
                ),
                "use_name": USES[data["use"]].name,
                "state_words": STATE_WORDS[data["state"]],
                "fields": [
                    (name, value)
                    for name in request.POST
                    if name not in ("csrfmiddlewaretoken", "confirmed", "tracks")
                    for value in request.POST.getlist(name)
                ],
                "back": back,
            },
        )
    try:
        job = services.bulk_change_start(
            artist=request.user,
            use=data["use"],
            state=data["state"],
            actor=request.user,
            track_public_ids=data["tracks"] if data["scope"] == "selected" else None,
            filters=form.filters() if data["scope"] == "all" else None,
        )
    except services.ConsentError as error:
        messages.error(request, str(error))
        return redirect(back)
    if job.status == job.Status.DONE:
        messages.success(request, _bulk_summary(job))
        return redirect(back)
    # ``back`` carries the list's own query string: encode it whole.
    return redirect(
        f"{reverse('tracks:bulk_status', kwargs={'public_id': job.public_id})}"
        f"?{urlencode({'next': back})}"
    )


STATE_WORDS = {"granted": "Yes", "denied": "No", "default": "my default"}


def _bulk_summary(job) -> str:
    name = USES[job.use].name
    parts = [f"{tracks_count(job.changed)} changed", f"{job.unchanged} already set"]
    if job.locked:
        parts.append(f"{job.locked} locked by the policy")
    return f"{name} set to {STATE_WORDS[job.state]}: {', '.join(parts)}."


@login_required
@require_GET
def bulk_status(request: HttpRequest, public_id) -> HttpResponse:
    job = bulk_job_for_owner(owner=request.user, public_id=public_id)
    context = {
        "job": job,
        "phase": job.phase,
        "not_reached": max(job.total - job.processed, 0),
        "use_name": USES[job.use].name,
        "summary": _bulk_summary(job),
        "back": safe_next(request, reverse("tracks:list")),
    }
    if request.htmx:
        return render(request, "consent/_bulk_progress.html", context)
    return render(request, "consent/bulk_status.html", context)
