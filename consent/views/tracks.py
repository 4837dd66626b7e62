"""The artist's pages: the track list and page, their switches, receipts,
defaults and uploads."""

import json
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog.forms import TrackUploadForm
from catalog.models import Track
from catalog.selectors import (
    SORT_LABELS,
    license_classes_of,
    track_for_owner,
    tracks_for_owner,
)
from consent import services
from consent.forms import (
    DefaultsForm,
    TrackListForm,
    switch_parse,
)
from consent.list_page import track_list_page
from consent.models import Source
from consent.partners import partner_activity_for_track
from consent.policy import (
    Policy,
    locked_next_step,
    policy_current,
    policy_promise,
)
from consent.propagation.status import propagation_status_for
from consent.propagation_html import (
    propagation_url,
    status_html,
    status_region_html,
    switched_html,
)
from consent.rows import (
    LOCK_ICON,
    cell_html,
    consent_cell,
    explain,
    switch_url,
)
from consent.selectors import (
    consents_for_tracks,
    defaults_for_artist,
    ledger_for_track,
    receipt_for_owner,
    receipts_for_track,
    tracks_on_default_count,
)
from consent.uses import USE_ORDER, USES
from consent.views.common import PLAIN_TEXT, safe_next, tracks_count


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
            "policy_promise": page.promise,
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
    status = propagation_status_for(
        track_ids_versions={track.pk: track.consent_version}
    )[track.pk]
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
            "all_locked": all(item.cell.locked for item in explanations),
            "next_step": locked_next_step(track.license_class),
            "history": history,
            "receipts": receipts_for_track(track=track)[:20],
            "partner_activity": partner_activity_for_track(track),
            "use_names": {use: USES[use].name for use in USE_ORDER},
            "lock_icon": LOCK_ICON,
            "policy": policy,
            "propagation": status_region_html(
                status,
                public_id=track.public_id,
                url=propagation_url(track.public_id),
            ),
        },
    )


@login_required
@require_GET
@never_cache
def track_propagation(request: HttpRequest, public_id: str) -> HttpResponse:
    """The track's propagation status alone, for the pages that poll it
    (another artist's track is a 404)."""
    track = get_object_or_404(
        tracks_for_owner(owner=request.user).only("pk", "consent_version"),
        public_id=public_id,
    )
    status = propagation_status_for(
        track_ids_versions={track.pk: track.consent_version}
    )[track.pk]
    return HttpResponse(status_html(status, public_id=public_id, url=request.path))


@login_required
@require_POST
def consent_update(request: HttpRequest, public_id: str) -> HttpResponse:
    """Set one use of one track (the track page's forms). HTMX gets the updated
    control back; a plain form post is redirected to where it came from."""
    choice = switch_parse(request.POST.get("use", ""), request.POST.get("state", ""))
    if choice is None:
        # Another artist's track is a 404 whatever was posted.
        track = track_for_owner(owner=request.user, public_id=public_id)
        return _not_understood(request, safe_next(request, track.get_absolute_url()))
    # The service finds the artist's track while locking it (one statement).
    return _switch(
        request,
        public_id,
        *choice,
        fallback=partial(reverse, "tracks:detail", kwargs={"public_id": public_id}),
        anchor=f"use-{choice[0]}",
        anchor_on_fallback=True,
    )


@login_required
@require_POST
def consent_switch(request: HttpRequest) -> HttpResponse:
    """A switch of the track list: ``set`` is ``<public id>|<use>|<state>``."""
    public_id, _, rest = request.POST.get("set", "").partition("|")
    use, _, state = rest.partition("|")
    choice = switch_parse(use, state)
    if choice is None:
        return _not_understood(request, safe_next(request, reverse("tracks:list")))
    return _switch(
        request,
        public_id,
        *choice,
        fallback=partial(reverse, "tracks:list"),
        anchor=f"r-{public_id}",
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
    anchor: str = "",
    anchor_on_fallback: bool = False,
) -> HttpResponse:
    """One switch, from the list or the track page: the busiest write, so
    the service finds and locks the artist's track in the same statement
    (another artist's track is a 404 as everywhere) and the HTMX answer is
    the control's HTML, formatted in Python. ``fallback`` gives the page a
    plain form post returns to without a ``next`` (an HTMX switch never
    reverses it), at ``anchor`` (the row or the use it came from; with
    ``anchor_on_fallback``, only when it returns to that page)."""
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
        return _back(request, fallback, anchor, anchor_on_fallback)
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
        # When it changed, the track's status (on the list or the track
        # page) turns pending and polls for the real one.
        html = cell_html(
            cell,
            public_id=track.public_id,
            switch_url=switch_url(),
            announce=True,
            out_of_band=switched_html(public_id=track.public_id)
            if result.changed
            else "",
        )
        return HttpResponse(html)
    if result.changed:
        word = {"granted": "Yes", "denied": "No", "default": "your default"}[state]
        messages.success(
            request, f"{USES[use].name} for “{track.title}” is now {word}. Saved."
        )
    return _back(request, fallback, anchor, anchor_on_fallback)


def _back(
    request: HttpRequest,
    fallback: Callable[[], str],
    anchor: str,
    anchor_on_fallback: bool,
) -> HttpResponse:
    """Back where a plain form post came from (``next``, else ``fallback``),
    scrolled to ``anchor``: a fragment already there is kept; with
    ``anchor_on_fallback``, only when that is the fallback's page."""
    page = fallback()
    url = safe_next(request, page)
    if not anchor or "#" in url or (anchor_on_fallback and url.split("?")[0] != page):
        return redirect(url)
    return redirect(f"{url}#{anchor}")


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
    """The artist's defaults for tracks not decided yet, and how their
    receipts are e-mailed: two forms, told apart by their ``section`` field
    (``defaults`` when absent). A post that is not valid changes nothing;
    the receipt e-mails form answers it with a 400 and its error."""
    from consent.views.settings import (
        SECTION_DEFAULTS,
        SECTION_RECEIPT_EMAILS,
        receipt_emails_form,
        receipt_emails_saved,
    )

    defaults = defaults_for_artist(artist=request.user)
    policy = policy_current()
    # "Not set" in the words of the classes the artist has tracks in.
    words = {"policy": policy, "classes": license_classes_of(artist=request.user)}
    form = DefaultsForm(defaults=defaults, **words)
    emails_form = receipt_emails_form(request.user)
    status = 200
    section = request.POST.get("section", SECTION_DEFAULTS)
    if request.method == "POST" and section == SECTION_RECEIPT_EMAILS:
        emails_form = receipt_emails_form(request.user, data=request.POST)
        if emails_form.is_valid():
            return receipt_emails_saved(request, emails_form)
        status = 400
    elif request.method == "POST" and section == SECTION_DEFAULTS:
        form = DefaultsForm(request.POST, defaults=defaults, **words)
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
                        f"{tracks_count(outcome.tracks_following)} changed with them."
                        if form.cleaned_data["apply_to_existing"]
                        else f"{tracks_count(outcome.tracks_kept)} kept their answer."
                    ),
                )
            else:
                messages.info(request, "Nothing changed.")
            return redirect("consent_settings")
    elif request.method == "POST":
        messages.error(request, "That form was not understood; nothing was changed.")
        status = 400
    on_default = {
        use: tracks_on_default_count(artist=request.user, use=use) for use in USE_ORDER
    }
    return render(
        request,
        "consent/settings.html",
        {
            "form": form,
            "policy": policy,
            "emails_form": emails_form,
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
        status=status,
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
                + policy_promise(policy_current()),
            )
            if count == 1:
                return redirect(created[0])
            return redirect("tracks:list")
        status = 400
    else:
        form = TrackUploadForm()
        status = 200
    return render(request, "catalog/track_upload.html", {"form": form}, status=status)
