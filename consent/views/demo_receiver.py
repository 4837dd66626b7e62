"""The demo's own partner: a webhook receiver served by the app itself, so a
newcomer running ``make run`` sees deliveries arrive (REFRAIN_DEMO_RECEIVER).

It keeps what it was told in a JSON file under REFRAIN_DEMO_RECEIVER_DIR
rather than in a table or the cache: a real partner's state lives outside
Refrain's database, the file survives restarts as the consumer's delivered
versions do (the local-memory cache would not, nor be shared with a worker),
and a test can read it from outside the process.
"""

from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from catalog.models import Track
from consent.models import Consumer
from consent.propagation.receiver import receiver_apply, receiver_file_store
from consent.uses import USE_ORDER, USES
from consent.views.common import PLAIN_TEXT

SHOWN = 200


def _directory() -> Path:
    return Path(settings.REFRAIN_DEMO_RECEIVER_DIR)


@csrf_exempt  # signed by Standard Webhooks instead: a partner has no cookie
@require_http_methods(["GET", "POST"])
def demo_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.REFRAIN_DEMO_RECEIVER:
        raise Http404("The demo receiver is off.")
    if request.method == "POST":
        return _receive(request)
    return _received(request)


def _receive(request: HttpRequest) -> HttpResponse:
    consumer = Consumer.objects.filter(
        name=settings.REFRAIN_DEMO_RECEIVER_CONSUMER, kind=Consumer.Kind.WEBHOOK
    ).first()
    if consumer is None:
        return HttpResponse(
            f"No webhook consumer named {settings.REFRAIN_DEMO_RECEIVER_CONSUMER!r} "
            "to verify with.",
            status=503,
            content_type=PLAIN_TEXT,
        )
    try:
        body = request.body.decode()
    except UnicodeDecodeError:
        return HttpResponse(
            "The body is not UTF-8.", status=400, content_type=PLAIN_TEXT
        )
    with receiver_file_store(_directory(), write=True) as store:
        status, words = receiver_apply(store, body, request.headers, consumer.secret)
    return HttpResponse(words, status=status, content_type=PLAIN_TEXT)


def _received(request: HttpRequest) -> HttpResponse:
    if not settings.DEBUG:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("Only staff see what the demo receiver got.")
    with receiver_file_store(_directory(), write=False) as store:
        held = dict(store)
    newest = sorted(
        held.items(), key=lambda item: (item[1]["received_at"], item[0]), reverse=True
    )[:SHOWN]
    titles = dict(
        Track.objects.filter(public_id__in=[key for key, _ in newest]).values_list(
            "public_id", "title"
        )
    )
    # Only the uses the partner is sent (the consumer's, as received).
    present = {use for _, entry in newest for use in entry["eligible"]}
    shown_uses = [use for use in USE_ORDER if use in present]
    rows = [
        {
            "public_id": public_id,
            "title": titles.get(public_id, ""),
            "version": entry["version"],
            "eligible": [entry["eligible"].get(use) for use in shown_uses],
            "received_at": datetime.fromisoformat(entry["received_at"]),
        }
        for public_id, entry in newest
    ]
    return render(
        request,
        "consent/consumers/demo_receiver.html",
        {
            "rows": rows,
            "total": len(held),
            "shown": SHOWN,
            "uses": [USES[use] for use in shown_uses],
            "consumer_name": settings.REFRAIN_DEMO_RECEIVER_CONSUMER,
        },
    )
