"""Baseline views for the benchmarks, served by the same app.

Mounted only when ``REFRAIN_BENCH_ENDPOINTS`` is on (never in production):
they show what a first, naive version would cost, so ``bench/`` can report
our pages as a ratio to them measured in the same run.
"""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.models import Track


@login_required
def trivial(request: HttpRequest) -> HttpResponse:
    """Session, user, one primary-key read."""
    track = Track.objects.filter(pk=int(request.GET.get("pk", 1))).first()
    return HttpResponse(f"ok {request.user.pk} {track.pk if track else 0}")


@login_required
def plain_list(request: HttpRequest) -> HttpResponse:
    """50 rows of title and date, paginated with COUNT and OFFSET."""
    paginator = Paginator(
        Track.objects.filter(artist=request.user).order_by("-uploaded_at", "-id"), 50
    )
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "bench/plain_list.html", {"page": page})


@login_required
def write(request: HttpRequest) -> HttpResponse:
    """One UPDATE and two INSERTs in one transaction (the toggle's baseline)."""
    from django.db import connection, transaction

    if request.method != "POST":
        return HttpResponse(status=405)
    track_id = int(request.POST.get("track", 0))
    state = "granted" if request.POST.get("state") == "granted" else "denied"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE consent_trackconsent SET decision = %s "
            "WHERE track_id = %s AND use = 'ai-inference'",
            [state, track_id],
        )
        cursor.execute(
            "INSERT INTO bench_write_log (track_id, state, at) VALUES (%s, %s, now())",
            [track_id, state],
        )
        cursor.execute(
            "INSERT INTO bench_write_log (track_id, state, at) VALUES (%s, %s, now())",
            [track_id, state],
        )
    return HttpResponse("ok")
