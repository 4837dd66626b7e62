import hashlib
import json
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.forms import TrackUploadForm
from catalog.models import LicenseClass, Track
from catalog.selectors import SORT_LABELS, track_for_owner
from consent import services
from consent.forms import (
    BulkChangeForm,
    DefaultsForm,
    PolicyForm,
    TrackListForm,
    switch_parse,
)
from consent.models import Rule, Source
from consent.policy import RULE_WORDS, Policy, policy_current
from consent.rows import (
    LOCK_ICON,
    cell_html,
    consent_cell,
    explain,
    switch_url,
    track_list_page,
)
from consent.selectors import (
    bulk_job_for_owner,
    consents_for_tracks,
    defaults_for_artist,
    ledger_for_track,
    receipt_for_owner,
    receipts_for_track,
    tracks_on_default_count,
)
from consent.uses import USE_ORDER, USES

# HTMX error answers are words, never markup (HTMX does not swap them in).
PLAIN_TEXT = "text/plain; charset=utf-8"


def _safe_next(request: HttpRequest, fallback: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return fallback


@login_required
@require_GET
def track_list(request: HttpRequest) -> HttpResponse:
    form = TrackListForm(request.GET)
    filters = form.filters()
    consent_filters = form.consent_filters()
    # filters() validated the form; an invalid field is dropped, not the page.
    page = track_list_page(
        owner=request.user,
        filters=filters,
        consent_filters=consent_filters,
        cursor=form.cleaned_data.get("cursor") or "",
    )
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "consent/track_list.html",
        {
            "form": form,
            "filters": filters,
            "consent_filters": consent_filters,
            "is_filtered": filters.is_filtered or consent_filters.is_filtered,
            "page": page,
            "rows_html": page.rows_html,
            "total": page.total,
            "sort_labels": SORT_LABELS,
            "uses": [USES[use] for use in USE_ORDER],
            "base_query": query.urlencode(),
            "current_url": request.get_full_path(),
            "bulk_inline_limit": settings.REFRAIN_BULK_INLINE_LIMIT,
        },
    )


@login_required
@require_GET
def track_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    track = track_for_owner(owner=request.user, public_id=public_id)
    policy = policy_current()
    states = consents_for_tracks(track_ids=[track.pk]).get(track.pk, {})
    defaults = defaults_for_artist(artist=request.user)
    explanations = []
    for use in USE_ORDER:
        decision, eligible = states.get(use, ("", False))
        cell = consent_cell(
            public_id=track.public_id,
            title=track.title,
            license_class=track.license_class,
            use=use,
            decision=decision,
            eligible=eligible,
            default=defaults.get(use),
            policy=policy,
        )
        explanations.append(
            explain(
                cell=cell,
                rule=policy.rule(track.license_class, use),
                decision=decision,
                default=defaults.get(use),
            )
        )
    history = Paginator(ledger_for_track(track=track), 20).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "consent/track_detail.html",
        {
            "track": track,
            "explanations": explanations,
            "history": history,
            "receipts": receipts_for_track(track=track)[:20],
            "use_names": {use: USES[use].name for use in USE_ORDER},
            "lock_icon": LOCK_ICON,
            "policy": policy,
        },
    )


@login_required
@require_POST
def consent_update(request: HttpRequest, public_id: str) -> HttpResponse:
    """Set one use of one track (the track page's forms). HTMX gets the updated
    control back; a plain form post is redirected to where it came from."""
    choice = switch_parse(request.POST.get("use", ""), request.POST.get("state", ""))
    if choice is None:
        # Another artist's track is a 404 whatever was posted.
        track = track_for_owner(owner=request.user, public_id=public_id)
        return _not_understood(request, _safe_next(request, track.get_absolute_url()))
    # The service finds the artist's track while locking it (one statement).
    return _switch(
        request,
        public_id,
        *choice,
        fallback=partial(reverse, "tracks:detail", kwargs={"public_id": public_id}),
    )


@login_required
@require_POST
def consent_switch(request: HttpRequest) -> HttpResponse:
    """A switch of the track list: ``set`` is ``<public id>|<use>|<state>``."""
    public_id, _, rest = request.POST.get("set", "").partition("|")
    use, _, state = rest.partition("|")
    choice = switch_parse(use, state)
    if choice is None:
        return _not_understood(request, _safe_next(request, reverse("tracks:list")))
    return _switch(
        request, public_id, *choice, fallback=partial(reverse, "tracks:list")
    )


def _not_understood(request: HttpRequest, back: str) -> HttpResponse:
    message = "That change was not understood; nothing was changed."
    if request.htmx:
        return HttpResponseBadRequest(message, content_type=PLAIN_TEXT)
    messages.error(request, message)
    return redirect(back)


def _switch(
    request: HttpRequest,
    public_id: str,
    use: str,
    state: str,
    *,
    fallback: Callable[[], str],
) -> HttpResponse:
    """One switch, from the list or the track page: the busiest write, so
    the service finds and locks the artist's track in the same statement
    (another artist's track is a 404 as everywhere) and the HTMX answer is
    the control's HTML, formatted in Python. ``fallback`` gives the page a
    plain form post returns to without a ``next`` (an HTMX switch never
    reverses it)."""
    try:
        result = services.consent_set(
            owner=request.user,
            public_id=public_id,
            use=use,
            state=state,
            actor=request.user,
            source=Source.WEB,
            request_id=request.META.get("HTTP_X_REQUEST_ID", "")[:64],
        )
    except Track.DoesNotExist as missing:
        raise Http404("No such track.") from missing
    except services.ConsentError as error:
        if request.htmx:
            return HttpResponse(str(error), status=409, content_type=PLAIN_TEXT)
        messages.error(request, str(error))
        return redirect(_safe_next(request, fallback()))
    track = result.track
    if request.htmx:
        cell = consent_cell(
            public_id=track.public_id,
            title=track.title,
            license_class=track.license_class,
            use=use,
            decision=result.decision,
            eligible=result.eligible,
            default=result.default,
            policy=Policy(number=0, rules={(track.license_class, use): result.rule}),
        )
        return HttpResponse(
            cell_html(
                cell,
                public_id=track.public_id,
                switch_url=switch_url(),
                announce=True,
            )
        )
    if result.changed:
        word = {"granted": "Yes", "denied": "No", "default": "your default"}[state]
        messages.success(
            request, f"{USES[use].name} for “{track.title}” is now {word}. Saved."
        )
    return redirect(_safe_next(request, fallback()))


@login_required
@require_POST
def bulk_change(request: HttpRequest) -> HttpResponse:
    form = BulkChangeForm(request.POST)
    back = _safe_next(request, reverse("tracks:list"))
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


def _tracks(count: int) -> str:
    return f"{count} track{'' if count == 1 else 's'}"


def _bulk_summary(job) -> str:
    name = USES[job.use].name
    parts = [f"{_tracks(job.changed)} changed", f"{job.unchanged} already set"]
    if job.locked:
        parts.append(f"{job.locked} locked by the policy")
    return f"{name} set to {STATE_WORDS[job.state]}: {', '.join(parts)}."


def _bulk_phase(job) -> str:
    """What the artist is told: ``done`` or ``failed`` as stored; ``running``
    only while a runner holds a live lease; otherwise ``waiting`` (never
    started, or its runner stopped: the beat sweep hands it on)."""
    if job.status in (job.Status.DONE, job.Status.FAILED):
        return job.status
    if (
        job.status == job.Status.RUNNING
        and job.lease_expires_at is not None
        and job.lease_expires_at > timezone.now()
    ):
        return "running"
    return "waiting"


@login_required
@require_GET
def bulk_status(request: HttpRequest, public_id) -> HttpResponse:
    job = bulk_job_for_owner(owner=request.user, public_id=public_id)
    context = {
        "job": job,
        "phase": _bulk_phase(job),
        "not_reached": max(job.total - job.processed, 0),
        "use_name": USES[job.use].name,
        "summary": _bulk_summary(job),
        "back": _safe_next(request, reverse("tracks:list")),
    }
    if request.htmx:
        return render(request, "consent/_bulk_progress.html", context)
    return render(request, "consent/bulk_status.html", context)


@login_required
@require_GET
def receipt_download(request: HttpRequest, public_id) -> HttpResponse:
    receipt = receipt_for_owner(owner=request.user, public_id=public_id)
    response = HttpResponse(
        json.dumps(receipt.payload, indent=2, ensure_ascii=False),
        content_type="application/json",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="refrain-receipt-{receipt.public_id}.json"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def consent_settings(request: HttpRequest) -> HttpResponse:
    defaults = defaults_for_artist(artist=request.user)
    if request.method == "POST":
        form = DefaultsForm(request.POST, defaults=defaults)
        if form.is_valid():
            outcome = services.defaults_set(
                artist=request.user,
                defaults=form.defaults(),
                apply_to_existing=form.cleaned_data["apply_to_existing"],
                actor=request.user,
            )
            if outcome.changed_uses:
                messages.success(
                    request,
                    "Your defaults were saved. "
                    + (
                        f"{_tracks(outcome.tracks_following)} changed with them."
                        if form.cleaned_data["apply_to_existing"]
                        else f"{_tracks(outcome.tracks_kept)} kept their answer."
                    ),
                )
            else:
                messages.info(request, "Nothing changed.")
            return redirect("consent_settings")
    else:
        form = DefaultsForm(defaults=defaults)
    on_default = {
        use: tracks_on_default_count(artist=request.user, use=use) for use in USE_ORDER
    }
    return render(
        request,
        "consent/settings.html",
        {
            "form": form,
            "uses": [
                {
                    "info": USES[use],
                    "field": form[use],
                    "on_default": on_default[use],
                    "explicit": defaults[use] is not None,
                }
                for use in USE_ORDER
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def track_upload(request: HttpRequest) -> HttpResponse:
    """Upload audio files; the new tracks start on the artist's defaults."""
    if request.method == "POST":
        form = TrackUploadForm(request.POST, request.FILES)
        if form.is_valid():
            created = services.tracks_upload(
                artist=request.user, uploads=form.cleaned_data["files"]
            )
            count = len(created)
            messages.success(
                request,
                f"Uploaded {count} track{'s' if count != 1 else ''}. "
                "Nothing is used for AI until you say yes.",
            )
            if count == 1:
                return redirect(created[0])
            return redirect("tracks:list")
        status = 400
    else:
        form = TrackUploadForm()
        status = 200
    return render(request, "catalog/track_upload.html", {"form": form}, status=status)


# --- Staff -------------------------------------------------------------------------


def _is_policy_admin(user) -> bool:
    return user.is_superuser or user.groups.filter(name="policy-admins").exists()


@staff_member_required
def audit(request: HttpRequest) -> HttpResponse:
    policy = policy_current()
    return render(
        request,
        "consent/audit.html",
        {
            "policy_rows": [
                {
                    "use": USES[use],
                    "rules": [
                        (cls_name, RULE_WORDS[policy.rule(cls, use)])
                        for cls, cls_name in LicenseClass.choices
                    ],
                }
                for use in USE_ORDER
            ],
            "policy": policy,
            "can_edit_policy": _is_policy_admin(request.user),
        },
    )


@staff_member_required
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
