"""Public, no sign-in: the ledger's signed anchors and the site's key."""

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from consent.anchors import SCHEMA, anchor_public
from consent.selectors import anchors_published
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
