"""Staff pages of the AI partners and the API keys: who may use the partner
API and the catalogue feed, and which partners are late acknowledging a
withdrawal.

Policy admins manage them (add a partner, create and revoke keys); auditors
see the same pages without the forms, as on the consumer pages. Each change
is a service of ``consent.partners``; a rejection is its ``KeyError_``
message, and changes nothing. A new key's plaintext is shown once, on the
page that answers its creation, and never stored.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consent import partners
from consent.forms_partners import ApiKeyCreateForm, PartnerCreateForm
from consent.models import ApiKey, Partner
from consent.partners.activity import (
    catalog_keys,
    overdue_for_partner,
    partner_keys,
    partners_overview,
    webhooks_unlinked,
)
from consent.views.common import staff_manager, staff_page, staff_viewer

OVERDUE_PAGE_SIZE = 50


def _viewer(request: HttpRequest) -> bool:
    """Refuse whoever may not see the pages; True for a policy admin."""
    return staff_viewer(
        request, refusal="Only policy admins and auditors see the partners."
    )


def _manager(request: HttpRequest) -> None:
    staff_manager(request, refusal="Only policy admins change partners and keys.")


def _list(request, *, can_manage: bool, key_form=None, status=200):
    return render(
        request,
        "consent/partners/list.html",
        {
            "rows": partners_overview(),
            "catalog_keys": catalog_keys(),
            "key_form": key_form or ApiKeyCreateForm(),
            "can_manage": can_manage,
        },
        status=status,
    )


@staff_page
@require_GET
def partner_list(request: HttpRequest) -> HttpResponse:
    return _list(request, can_manage=_viewer(request))


def _detail(request, partner, *, can_manage: bool, key_form=None, status=200):
    overdue = Paginator(overdue_for_partner(partner), OVERDUE_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "consent/partners/detail.html",
        {
            "partner": partner,
            "keys": partner_keys(partner),
            "key_form": key_form or ApiKeyCreateForm(),
            "overdue": overdue,
            "can_manage": can_manage,
        },
        status=status,
    )


@staff_page
@require_GET
def partner_detail(request: HttpRequest, partner_id: int) -> HttpResponse:
    can_manage = _viewer(request)
    partner = get_object_or_404(
        Partner.objects.select_related("consumer"), pk=partner_id
    )
    return _detail(request, partner, can_manage=can_manage)


@staff_page
@require_http_methods(["GET", "POST"])
def partner_new(request: HttpRequest) -> HttpResponse:
    _manager(request)
    form = PartnerCreateForm(
        request.POST if request.method == "POST" else None,
        webhooks=webhooks_unlinked(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            partner = partners.partner_create(
                name=form.cleaned_data["name"],
                consumer=form.cleaned_data["consumer"],
                ack_days=form.cleaned_data["ack_days"],
                actor=request.user,
            )
        except partners.KeyError_ as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"{partner.name} is added. Create a key for it below, to give "
                "to the company.",
            )
            return redirect("partners:detail", partner_id=partner.pk)
    return render(request, "consent/partners/new.html", {"form": form})


def _key_page(request, key: ApiKey, plaintext: str) -> HttpResponse:
    return render(
        request, "consent/partners/key.html", {"key": key, "plaintext": plaintext}
    )


@staff_page
@require_POST
def partner_key_new(request: HttpRequest, partner_id: int) -> HttpResponse:
    _manager(request)
    partner = get_object_or_404(
        Partner.objects.select_related("consumer"), pk=partner_id
    )
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        try:
            key, plaintext = partners.apikey_create(
                name=form.cleaned_data["name"],
                scope=ApiKey.Scope.PARTNER,
                partner=partner,
                rate_limit=form.cleaned_data["rate_limit"],
                actor=request.user,
            )
        except partners.KeyError_ as error:
            form.add_error(None, str(error))
        else:
            return _key_page(request, key, plaintext)
    return _detail(request, partner, can_manage=True, key_form=form, status=400)


@staff_page
@require_POST
def catalog_key_new(request: HttpRequest) -> HttpResponse:
    _manager(request)
    form = ApiKeyCreateForm(request.POST)
    if form.is_valid():
        try:
            key, plaintext = partners.apikey_create(
                name=form.cleaned_data["name"],
                scope=ApiKey.Scope.CATALOG,
                rate_limit=form.cleaned_data["rate_limit"],
                actor=request.user,
            )
        except partners.KeyError_ as error:
            form.add_error(None, str(error))
        else:
            return _key_page(request, key, plaintext)
    return _list(request, can_manage=True, key_form=form, status=400)


@staff_page
@require_POST
def key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    _manager(request)
    key = get_object_or_404(ApiKey, pk=key_id)
    back = (
        reverse("partners:detail", kwargs={"partner_id": key.partner_id})
        if key.partner_id
        else reverse("partners:list")
    )
    if key.revoked_at is not None:
        messages.info(request, f"The key “{key.name}” was revoked already.")
        return redirect(back)
    partners.apikey_revoke(prefix=key.prefix)
    messages.success(
        request,
        f"The key “{key.name}” ({key.prefix}…) is revoked: every request that "
        "uses it is refused from now on.",
    )
    return redirect(back)
