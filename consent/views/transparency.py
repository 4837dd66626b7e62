"""Public, no sign-in: the policy in words and its history, the ledger's
signed anchors and the site's key."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from catalog.models import LicenseClass
from consent.anchors import SCHEMA, anchor_public
from consent.policy import PUBLIC_RULE_WORDS, policy_changes
from consent.selectors import anchors_published, policy_history
from consent.signing import public_jwk
from consent.uses import USE_ORDER, USES

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
    history = policy_history()
    classes = [(value, label) for value, label in LicenseClass.choices]

    def words(rules: dict, license_class: str, use: str) -> str:
        return PUBLIC_RULE_WORDS[rules[(license_class, use)]]

    current_version, current_rules = history[0]
    table = [
        {
            "use": USES[use].name,
            "description": USES[use].description,
            "rules": [words(current_rules, value, use) for value, _ in classes],
        }
        for use in USE_ORDER
    ]
    versions = []
    for index, (version, rules) in enumerate(history):
        earlier = history[index + 1][1] if index + 1 < len(history) else None
        changes = [
            f"{USES[change.use].name}, "
            f"{LicenseClass(change.license_class).label.lower()} "
            f"music: {PUBLIC_RULE_WORDS[change.old]} before, "
            f"{PUBLIC_RULE_WORDS[change.new]} from then on"
            for change in (policy_changes(earlier, rules) if earlier else [])
        ]
        versions.append(
            {"version": version, "changes": changes, "first": earlier is None}
        )
    return render(
        request,
        "consent/policy_public.html",
        {
            "current": current_version,
            "classes": [label for _, label in classes],
            "table": table,
            "versions": versions,
        },
    )
