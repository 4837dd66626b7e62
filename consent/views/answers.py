"""The artist's answers for every track as one CSV download."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from catalog.models import Track
from consent.audit import csv_lines
from consent.rows import consent_cell
from consent.selectors import consents_for_tracks, list_state
from consent.uses import USE_ORDER

CHUNK = 2000


def _chunks(owner):
    """Every track of ``owner`` by id, ``CHUNK`` at a time, each with the
    answer per use in the words of the controls and its eligibility."""
    policy, defaults, _ = list_state(owner=owner)
    after = 0
    while True:
        tracks = list(
            Track.objects.filter(artist=owner, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "public_id", "title", "isrc", "license_class")[:CHUNK]
        )
        if not tracks:
            return
        after = tracks[-1][0]
        states = consents_for_tracks(track_ids=[row[0] for row in tracks])
        rows = []
        for pk, public_id, title, isrc, license_class in tracks:
            row = [public_id, title, isrc or "", license_class]
            for use in USE_ORDER:
                decision, eligible = states.get(pk, {}).get(use, ("", False))
                cell = consent_cell(
                    public_id=public_id,
                    title=title,
                    license_class=license_class,
                    use=use,
                    decision=decision,
                    eligible=eligible,
                    default=defaults.get(use),
                    policy=policy,
                )
                row += [cell.text, "yes" if cell.eligible else "no"]
            rows.append(row)
        yield rows


@login_required
@require_GET
def answers_csv(request: HttpRequest) -> StreamingHttpResponse:
    header = ["track", "title", "isrc", "license_class"]
    for use in USE_ORDER:
        header += [f"{use}_answer", f"{use}_eligible"]
    response = StreamingHttpResponse(
        csv_lines(header, _chunks(request.user)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="refrain-my-answers.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
