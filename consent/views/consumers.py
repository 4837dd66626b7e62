"""Staff pages of the consumers: who hears of consent changes, and how it goes.

Policy admins manage them (create, pause, resume, rotate the secret, send a
test event, replay); auditors see the same pages without the forms. Each
change is a service of ``consent.propagation``; a rejection is its
``ConsumerError`` message, and changes nothing.
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consent import propagation
from consent.forms_consumers import ConsumerCreateForm, ConsumerReplayForm
from consent.models import Consumer, DeliveryAttempt
from consent.propagation import health
from consent.views.common import staff_manager, staff_page, staff_viewer


def _viewer(request: HttpRequest) -> bool:
    """Refuse whoever may not see the pages; True for a policy admin."""
    return staff_viewer(
        request, refusal="Only policy admins and auditors see the consumers."
    )


def _manager(request: HttpRequest) -> None:
    staff_manager(request, refusal="Only policy admins change consumers.")


@staff_page
@require_GET
def consumer_list(request: HttpRequest) -> HttpResponse:
    can_manage = _viewer(request)
    return render(
        request,
        "consent/consumers/list.html",
        {"rows": health.consumers_health(), "can_manage": can_manage},
    )


def _detail(request, consumer, replay_form=None, status=200, can_manage=True):
    """The detail page; ``can_manage`` False shows it without the forms
    (every caller has checked who may see it)."""
    return render(
        request,
        "consent/consumers/detail.html",
        {
            "consumer": consumer,
            "health": health.consumer_health(consumer=consumer),
            "lag": health.consumer_lag(consumer=consumer),
            "attempts": health.consumer_attempts(consumer=consumer),
            "dead_letters": health.consumer_dead_letters(consumer=consumer),
            "replay_form": replay_form or ConsumerReplayForm(),
            "can_manage": can_manage,
            "is_webhook": consumer.kind == Consumer.Kind.WEBHOOK,
            "grace_hours": settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS,
        },
        status=status,
    )


@staff_page
@require_GET
def consumer_detail(request: HttpRequest, consumer_id: int) -> HttpResponse:
    can_manage = _viewer(request)
    consumer = get_object_or_404(Consumer, pk=consumer_id)
    return _detail(request, consumer, can_manage=can_manage)


def _secret_page(request, consumer: Consumer, secret: str, *, rotated: bool):
    return render(
        request,
        "consent/consumers/secret.html",
        {
            "consumer": consumer,
            "secret": secret,
            "rotated": rotated,
            "grace_hours": settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS,
        },
    )


@staff_page
@require_http_methods(["GET", "POST"])
def consumer_new(request: HttpRequest) -> HttpResponse:
    _manager(request)
    form = ConsumerCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            made = propagation.consumer_create(
                check_address=True,
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"].strip(),
                uses=form.cleaned_data["uses"],
                actor=request.user,
            )
        except propagation.ConsumerError as error:
            form.add_error(None, str(error))
        else:
            return _secret_page(request, made.consumer, made.secret, rotated=False)
    return render(request, "consent/consumers/new.html", {"form": form})


def _managed(request: HttpRequest, consumer_id: int) -> Consumer:
    _manager(request)
    return get_object_or_404(Consumer, pk=consumer_id)


@staff_page
@require_POST
def consumer_pause(request: HttpRequest, consumer_id: int) -> HttpResponse:
    consumer = _managed(request, consumer_id)
    try:
        propagation.consumer_pause(consumer=consumer, actor=request.user)
    except propagation.ConsumerError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            f"{consumer.name} is paused. Changes are still recorded and will be "
            "sent when it is resumed.",
        )
    return redirect(consumer)


@staff_page
@require_POST
def consumer_resume(request: HttpRequest, consumer_id: int) -> HttpResponse:
    consumer = _managed(request, consumer_id)
    try:
        propagation.consumer_resume(consumer=consumer, actor=request.user)
    except propagation.ConsumerError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"{consumer.name} is active again: what it missed is on its way."
        )
    return redirect(consumer)


@staff_page
@require_POST
def consumer_rotate(request: HttpRequest, consumer_id: int) -> HttpResponse:
    consumer = _managed(request, consumer_id)
    try:
        rotated = propagation.consumer_rotate_secret(
            consumer=consumer, actor=request.user
        )
    except propagation.ConsumerError as error:
        messages.error(request, str(error))
        return redirect(consumer)
    return _secret_page(request, rotated.consumer, rotated.secret, rotated=True)


def test_event_words(attempt: DeliveryAttempt) -> tuple[bool, str]:
    """Whether a test event got a 2xx, and what happened, in words."""
    took = f"in {attempt.duration_ms} ms"
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return True, f"The test event was delivered: HTTP {code} {took}."
    why = attempt.error or (f"HTTP {code}" if code else "no answer")
    return False, f"The test event was not delivered ({why}), {took}."


@staff_page
@require_POST
def consumer_test(request: HttpRequest, consumer_id: int) -> HttpResponse:
    consumer = _managed(request, consumer_id)
    try:
        attempt = propagation.consumer_send_test(consumer=consumer)
    except propagation.ConsumerError as error:
        messages.error(request, str(error))
    else:
        ok, words = test_event_words(attempt)
        (messages.success if ok else messages.error)(request, words)
    return redirect(consumer)


@staff_page
@require_POST
def consumer_replay(request: HttpRequest, consumer_id: int) -> HttpResponse:
    consumer = _managed(request, consumer_id)
    form = ConsumerReplayForm(request.POST)
    if not form.is_valid():
        return _detail(request, consumer, replay_form=form, status=400)
    since = form.since_start()
    try:
        propagation.consumer_replay(consumer=consumer, since=since, actor=request.user)
    except propagation.ConsumerError as error:
        form.add_error("since", str(error))
        return _detail(request, consumer, replay_form=form, status=400)
    what = (
        "every track"
        if since is None
        else f"every track changed or uploaded since {since:%Y-%m-%d}"
    )
    messages.success(
        request,
        f"Replay started: {consumer.name} will be sent the current state of {what}.",
    )
    return redirect(consumer)
