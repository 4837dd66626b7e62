"""Public, no sign-in: the transparency figures, the policy in words and
its history, the ledger's signed anchors and the site's key."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from catalog.models import LicenseClass
from consent import audit
from consent.anchors import SCHEMA, anchor_public
from consent.policy import policy_current
from consent.selectors import (
    anchors_published,
    policy_table,
    policy_versions_described,
)
from consent.signing import public_jwk

ANCHORS_PAGE = 100
ABOUT_ANCHORS = (
    "Each anchor is the site's Ed25519 signature (key at "
    "/.well-known/refrain-keys.json) of its 'signed' text: the Merkle root "
    "(RFC 6962, SHA-256) over the newest ledger row of every track's chain "
    "among the rows up to 'ledger_through', one leaf per track, "
    '["<track public id>",<consent version>,"<row hash>"] as compact JSON, '
    "in byte order of the public ids."
)


@require_GET
def anchor_list(request: HttpRequest) -> JsonResponse:
    """The anchors, newest first, ``ANCHORS_PAGE`` at a time (``?before=`` an
    anchor id gives the older ones)."""
    before = request.GET.get("before")
    if before is not None and not (before.isascii() and before.isdigit()):
        return JsonResponse({"error": "before must be an anchor id"}, status=400)
    anchors = list(
        anchors_published(before=int(before) if before else None)[: ANCHORS_PAGE + 1]
    )
    older = None
    if len(anchors) > ANCHORS_PAGE:
        anchors = anchors[:ANCHORS_PAGE]
        older = f"{reverse('anchor_list')}?before={anchors[-1].pk}"
    return JsonResponse(
        {
            "schema": SCHEMA,
            "about": ABOUT_ANCHORS,
            "anchors": [anchor_public(anchor) for anchor in anchors],
            "next": older,
        }
    )


@require_GET
def signing_keys(request: HttpRequest) -> JsonResponse:
    """The site's public signing key as a JWK set."""
    return JsonResponse({"keys": [public_jwk()]})


@require_GET
def policy_page(request: HttpRequest) -> HttpResponse:
    """The platform's policy: per licence class and use, when a track may be
    used for AI, in words; and every version, with why and what it changed."""
    versions = policy_versions_described()
    return render(
        request,
        "consent/policy_public.html",
        {
            "current": versions[0]["version"],
            "classes": [label for _, label in LicenseClass.choices],
            "table": policy_table(versions[0]["rules"]),
            "versions": versions,
        },
    )


@require_GET
def transparency_page(request: HttpRequest) -> HttpResponse:
    """The audit's aggregate figures for anyone: side by side, the parity
    finding, the policy and its history; no artist or track, and any count
    under the threshold shown as "fewer than 10"."""
    snapshot, figures = audit.audit_figures_current()
    versions = policy_versions_described()
    policy = policy_current()
    return render(
        request,
        "consent/transparency.html",
        {
            "snapshot": snapshot,
            "tables": audit.side_by_side(figures, public=True),
            "parity": audit.parity(policy, figures, public=True),
            "classes": [label for _, label in LicenseClass.choices],
            "class_pairs": audit.figures.CLASSES,
            "current": versions[0]["version"],
            "table": policy_table(versions[0]["rules"]),
            "versions": versions,
            "threshold": audit.PUBLIC_THRESHOLD,
        },
    )
